/** Accounts, sessions and guards for the LAN web server (status page, records viewer). */
export {
  createUser,
  deleteUser,
  listUsers,
  setPassword,
  unlockUser,
  setDisabled,
  auditAccount,
  accountAudit,
  validatePassword,
  validateUsername,
  checkLogin,
  migrateAuth,
  ROLES,
  type Role,
  type Account,
  type AuditEntry,
} from './accounts.js';
export { csrfToken, requireRole, registerAuth, SESSION_COOKIE, type AuthOptions } from './plugin.js';
export { SessionStore, type Session, type SessionUser } from './sessions.js';
export { hashPassword, verifyPassword } from '../../../common/password.js';
