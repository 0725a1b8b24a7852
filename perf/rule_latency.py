"""Time from a rules change to the new rule serving traffic, over N changes.

  rule_latency.py PORT N PATH TEMPLATE_FILE   (the template holds {host})

Each change writes TEMPLATE with a fresh host name to PATH (atomically: a temporary file,
then a rename) and polls Tether on 127.0.0.1:PORT over one keep-alive connection with
Host: <that name> until it answers 200. Prints the median, p90, p99 and max in ms."""
import http.client
import os
import statistics
import sys
import time

port, n, path, template = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], open(sys.argv[4]).read()
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
samples = []
for i in range(n):
    host = "h%d-%d" % (os.getpid(), i)
    tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".tmp")
    with open(tmp, "w") as f:
        f.write(template.replace("{host}", host))
    t0 = time.perf_counter()
    os.rename(tmp, path)
    while True:
        conn.request("GET", "/", headers={"Host": host})
        r = conn.getresponse()
        r.read()
        if r.status == 200:
            break
        if time.perf_counter() - t0 > 10:
            sys.exit("change %d never served" % i)
    samples.append((time.perf_counter() - t0) * 1000)
    time.sleep(0.05)
samples.sort()
def pct(p):
    return samples[min(len(samples) - 1, int(len(samples) * p))]
print("changes %d  median %.1f ms  p90 %.1f ms  p99 %.1f ms  max %.1f ms"
      % (len(samples), statistics.median(samples), pct(0.90), pct(0.99), samples[-1]))
