# Allocation-heavy, deterministic Python: containers, strings, json, regex,
# hashing, compression, decimals, objects with cycles, threads.  Prints a
# digest of each part; the same interpreter must print the same lines
# whatever allocator serves it.
import collections
import decimal
import hashlib
import json
import re
import threading
import zlib
import gc


def digest(obj):
    return hashlib.sha256(repr(obj).encode()).hexdigest()[:16]


words = ["w%05d" % ((i * 7919) % 30011) for i in range(60000)]
counts = collections.Counter(words)
print("counter", len(counts), counts.most_common(3), digest(sorted(counts.items())))

d = {}
for i, w in enumerate(words):
    d.setdefault(w[:4], []).append(i)
print("dict", len(d), digest(sorted((k, len(v)) for k, v in d.items())))

doc = [{"id": i, "name": words[i], "tags": words[i:i + 5], "x": i / 7} for i in range(0, 20000, 3)]
text = json.dumps(doc, sort_keys=True)
back = json.loads(text)
print("json", len(text), back == doc, digest(text))

big = " ".join(words)
subbed = re.sub(r"w0(\d)(\d+)", lambda m: m.group(2)[::-1] + m.group(1), big)
print("regex", len(subbed), len(re.findall(r"\b9\w*", subbed)), digest(subbed))

blob = (big * 3).encode()
z = zlib.compress(blob, 9)
print("zlib", len(blob), len(z), zlib.decompress(z) == blob)

decimal.getcontext().prec = 200
print("decimal", str(decimal.Decimal(2).sqrt())[:60])


class Node:
    def __init__(self, n):
        self.n = n
        self.peer = None
        self.data = bytearray(n % 300)


nodes = [Node(i) for i in range(50000)]
for a, b in zip(nodes, nodes[1:]):
    a.peer, b.peer = b, a
total = sum(len(n.data) for n in nodes)
del nodes, a, b
print("objects", total, gc.collect() >= 0)

results = [None] * 4


def work(k):
    acc = []
    for i in range(20000):
        acc.append(str(i * k) * (i % 5))
        if len(acc) > 500:
            acc = acc[250:]
    results[k] = digest(acc)


threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("threads", results)

s = ""
for i in range(20000):
    s += chr(65 + i % 26)
print("strings", len(s), digest(s))
