// better-sqlite3-multiple-ciphers ships index.d.ts but its package.json "exports" hides it from
// NodeNext resolution. It is a fork of better-sqlite3 with the same API (plus cipher pragmas), so
// borrow those types.
declare module 'better-sqlite3-multiple-ciphers' {
  import Database from 'better-sqlite3';
  export default Database;
}
