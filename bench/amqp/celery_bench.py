"""Python Celery 5.2 side of the AMQP benchmark (Debian python3-celery, py-amqp).

  celery_bench.py enqueue URL QUEUE COUNT                  send COUNT bench.noop tasks one by one; prints {"ms"}
  celery_bench.py drain URL QUEUE POOL CONCURRENCY COUNT   run a worker; prints {"ms", "rssMiB"} once COUNT
                                                           tasks ran (first start -> last end), then exits
  celery_bench.py worker URL QUEUE POOL CONCURRENCY        run a worker until killed (drains are timed
                                                           from outside: prefork children count apart)
  celery_bench.py send URL QUEUE COUNT RATE                send COUNT tasks at RATE/s carrying their send
                                                           time (a `drain` worker prints the latencies)

Celery's defaults otherwise: acks early, prefetch multiplier 4, no result backend.
"""
import json
import os
import sys
import threading
import time

from celery import Celery

url, queue = sys.argv[2], sys.argv[3]
app = Celery('bench', broker=url)
app.conf.update(task_serializer='json', accept_content=['json'], task_ignore_result=True,
                worker_hijack_root_logger=False, broker_connection_retry_on_startup=True,
                worker_prefetch_multiplier=int(os.environ.get('BENCH_PREFETCH_MULTIPLIER', '4')), broker_heartbeat=int(os.environ.get('BENCH_BROKER_HEARTBEAT', '120')))

state = {'count': 0, 'first': None, 'target': 0, 'latencies': []}
lock = threading.Lock()


def rss_mib():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024
    return 0


@app.task(name='bench.noop', ignore_result=True)
def noop(sent_at=0):
    now = time.monotonic() * 1000
    with lock:
        if state['first'] is None:
            state['first'] = time.perf_counter()
        if sent_at:
            state['latencies'].append(now - float(sent_at))
        state['count'] += 1
        done = state['count'] == state['target']
    if done:
        out = {'ms': (time.perf_counter() - state['first']) * 1000, 'rssMiB': rss_mib()}
        if state['latencies']:
            out['latencies'] = state['latencies']
        # sys.__stdout__: the worker redirects sys.stdout to its logger.
        sys.__stdout__.write(json.dumps(out) + '\n')
        sys.__stdout__.flush()
        os._exit(0)


def worker(pool, concurrency):
    app.worker_main(argv=['worker', '-Q', queue, '-P', pool, '-c', str(concurrency), '--loglevel', 'WARNING',
                          '--without-gossip', '--without-mingle', '--without-heartbeat', '-n', f'bench-{queue}@%h'])


def main():
    cmd = sys.argv[1]
    if cmd == 'enqueue':
        count = int(sys.argv[4])
        t0 = time.perf_counter()
        for _ in range(count):
            app.send_task('bench.noop', args=[0], queue=queue)
        print(json.dumps({'ms': (time.perf_counter() - t0) * 1000}), flush=True)
        return 0
    if cmd == 'drain':
        pool, concurrency, state['target'] = sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
        worker(pool, concurrency)
        return 0
    if cmd == 'worker':
        worker(sys.argv[4], int(sys.argv[5]))
        return 0
    if cmd == 'send':
        count, rate = int(sys.argv[4]), float(sys.argv[5])
        t0 = time.perf_counter()
        for i in range(count):
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            app.send_task('bench.noop', args=[time.monotonic() * 1000], queue=queue)
        print(json.dumps({'ms': (time.perf_counter() - t0) * 1000}), flush=True)
        return 0
    return 2


if __name__ == '__main__':
    sys.exit(main())
