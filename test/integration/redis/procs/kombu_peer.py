"""kombu's own Redis transport, driven from tests (Debian python3-kombu 5.2.4).

  kombu_peer.py restore URL PREFIX VISIBILITY      run QoS.restore_visible once (kombu's restore of lost messages)
  kombu_peer.py take URL PREFIX QUEUE              take one message like a worker (unacked + unacked_index), print
                                              its delivery tag, then die without acking (os._exit)
  kombu_peer.py get URL PREFIX QUEUE               take one message, print its payload and headers, ack it
"""
import json
import os
import sys

from kombu import Connection


def connect(url, prefix, visibility=3600):
    opts = {'visibility_timeout': float(visibility)}
    if prefix:
        opts['global_keyprefix'] = prefix
    return Connection(url, transport_options=opts)


def main():
    cmd, url, prefix = sys.argv[1:4]
    if cmd == 'restore':
        with connect(url, prefix, sys.argv[4]) as conn:
            conn.default_channel.qos.restore_visible(num=1000)
        print('restored')
        return 0
    queue = sys.argv[4]
    conn = connect(url, prefix)
    q = conn.SimpleQueue(queue)
    msg = q.get(timeout=5)
    if cmd == 'take':
        print(json.dumps({'tag': msg.delivery_tag, 'headers': msg.headers}), flush=True)
        os._exit(0)
    print(json.dumps({'tag': msg.delivery_tag, 'headers': msg.headers, 'body': msg.body.decode() if isinstance(msg.body, bytes) else msg.body,
                      'priority': msg.properties.get('priority'), 'delivery_info': msg.delivery_info.get('routing_key')}), flush=True)
    msg.ack()
    conn.release()
    return 0


if __name__ == '__main__':
    sys.exit(main())
