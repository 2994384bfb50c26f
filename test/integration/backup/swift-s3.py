"""
A one-node OpenStack Swift (Debian package python3-swift) with its S3 API (s3api middleware) and
tempauth: the S3-compatible target of the backup tests. Debian bookworm packages no other S3
server (no minio, no moto). Usage (the test drives it):

  swift-s3.py setup DIR IP PORT  write swift.conf, rings and server configs under DIR; the S3
                                 endpoint is the proxy on https://IP:PORT (DIR/tls.crt, made by
                                 the caller), storage servers on PORT+1..3
  swift-s3.py run DIR SERVER   run one server (proxy-server, account-server, container-server,
                               object-server) in the foreground

S3 credentials: access key "surgery:edge", secret "s3cret-for-tests".
"""
import os
import sys

import swift.common.utils as utils


def setup(d, ip, port):
    from swift.common.ring import RingBuilder

    os.makedirs(os.path.join(d, 'srv', 'd1'), exist_ok=True)
    with open(os.path.join(d, 'swift.conf'), 'w') as f:
        f.write('[swift-hash]\nswift_hash_path_suffix = se-test\nswift_hash_path_prefix = se-test\n'
                '[storage-policy:0]\nname = gold\ndefault = yes\n')
    ports = {'account': port + 1, 'container': port + 2, 'object': port + 3}
    for kind, p in ports.items():
        b = RingBuilder(4, 1, 1)
        b.add_dev({'id': 0, 'region': 1, 'zone': 1, 'ip': ip, 'port': p, 'device': 'd1', 'weight': 100})
        b.rebalance()
        b.get_ring().save(os.path.join(d, '%s.ring.gz' % kind))
    common = ('[DEFAULT]\nbind_ip = ' + ip + '\nbind_port = %d\nworkers = 0\nswift_dir = %s\ndevices = %s\n'
              'mount_check = false\nlog_name = %s\nlog_level = WARNING\nlog_facility = LOG_LOCAL0\n')
    for kind, p in ports.items():
        with open(os.path.join(d, '%s-server.conf' % kind), 'w') as f:
            f.write(common % (p, d, os.path.join(d, 'srv'), kind))
            f.write('[pipeline:main]\npipeline = %s-server\n[app:%s-server]\nuse = egg:swift#%s\n' % (kind, kind, kind))
    with open(os.path.join(d, 'proxy-server.conf'), 'w') as f:
        f.write(common % (port, d, os.path.join(d, 'srv'), 'proxy'))
        # HTTPS, as an ICB's S3 is: over plain HTTP restic sends aws-chunked uploads, which Swift 2.30 refuses.
        f.write('cert_file = %s\nkey_file = %s\n' % (os.path.join(d, 'tls.crt'), os.path.join(d, 'tls.key')))
        f.write('[pipeline:main]\npipeline = catch_errors proxy-logging cache s3api tempauth proxy-logging proxy-server\n'
                '[app:proxy-server]\nuse = egg:swift#proxy\naccount_autocreate = true\n'
                '[filter:catch_errors]\nuse = egg:swift#catch_errors\n'
                '[filter:proxy-logging]\nuse = egg:swift#proxy_logging\n'
                '[filter:cache]\nuse = egg:swift#memcache\nmemcache_servers = 127.0.0.1:1\n'
                '[filter:s3api]\nuse = egg:swift#s3api\nlocation = us-east-1\n'
                '[filter:tempauth]\nuse = egg:swift#tempauth\nuser_surgery_edge = s3cret-for-tests .admin\n')


def run(d, server):
    utils.SWIFT_CONF_FILE = os.path.join(d, 'swift.conf')
    from swift.common.wsgi import run_wsgi
    sys.exit(run_wsgi(os.path.join(d, '%s.conf' % server), server, verbose=True))


if __name__ == '__main__':
    if sys.argv[1] == 'setup':
        utils.SWIFT_CONF_FILE = os.path.join(sys.argv[2], 'swift.conf')
        setup(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        run(sys.argv[2], sys.argv[3])
