"""Python Celery 5.2 side of the Redis benchmark (Debian python3-celery).

  celery_bench.py enqueue URL QUEUE COUNT            send COUNT bench.noop tasks one by one; prints {"ms"}
  celery_bench.py worker URL QUEUE POOL CONCURRENCY  run a worker (-P POOL -c CONCURRENCY) on QUEUE
  celery_bench.py fill URL QUEUE COUNT               (not timed) send COUNT tasks
  celery_bench.py latency URL QUEUE COUNT RATE       send COUNT tasks at RATE/s carrying their send time

bench.noop(sent_at_ms) records its send -> start latency (ms) in the Redis list <BENCH_PREFIX>latency:<queue>
when sent_at_ms > 0, and does nothing else. Results are ignored (no backend).
"""
import json
import os
import sys
import time

from celery import Celery
import redis

url, queue = sys.argv[2], sys.argv[3]
prefix = os.environ.get('BENCH_PREFIX', '')
app = Celery('bench', broker=url)
app.conf.broker_transport_options = {'global_keyprefix': prefix} if prefix else {}
app.conf.update(task_serializer='json', accept_content=['json'], task_ignore_result=True,
                worker_hijack_root_logger=False, broker_connection_retry_on_startup=True,
                worker_prefetch_multiplier=4)
_r = redis.Redis.from_url(url)


@app.task(name='bench.noop', ignore_result=True)
def noop(sent_at=0):
    if sent_at:
        _r.rpush(f'{prefix}latency:{queue}', time.monotonic() * 1000 - float(sent_at))


def main():
    cmd = sys.argv[1]
    if cmd in ('enqueue', 'fill'):
        count = int(sys.argv[4])
        t0 = time.perf_counter()
        for _ in range(count):
            app.send_task('bench.noop', args=[0], queue=queue)
        print(json.dumps({'ms': (time.perf_counter() - t0) * 1000}), flush=True)
        return 0
    if cmd == 'latency':
        count, rate = int(sys.argv[4]), float(sys.argv[5])
        t0 = time.perf_counter()
        for i in range(count):
            due = t0 + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            app.send_task('bench.noop', args=[time.monotonic() * 1000], queue=queue)
        print(json.dumps({'ms': (time.perf_counter() - t0) * 1000}), flush=True)
        return 0
    if cmd == 'worker':
        pool, concurrency = sys.argv[4], sys.argv[5]
        app.worker_main(argv=['worker', '-Q', queue, '-P', pool, '-c', concurrency, '--loglevel', 'WARNING',
                              '--without-gossip', '--without-mingle', '--without-heartbeat', '-n', f'bench-{queue}@%h'])
        return 0
    return 2


if __name__ == '__main__':
    sys.exit(main())
