#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz harnesses into corpus/api and corpus/env.

Each seed spells operations in the harness's input format (see fuzz_api.c,
fuzz_env.c), so fuzzing starts from inputs that reach every operation.
Run from anywhere: python3 tests/fuzz/gen_corpus.py
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

# fuzz_api.c: op % 8 -> 0,1 alloc; 2,3 realloc; 4 free; 5 injected failure
# (bit 7: on realloc); 6 invalid request; 7 check a block.  Then a slot byte.
ALLOC, REALLOC, FREE, INJECT, INVALID, CHECK = 0, 2, 4, 5, 6, 7
ZERO, NOWARN, NOWAIT, ATOMIC = 1, 2, 4, 8


def size(n):
    """Bytes pick_size() decodes to n (n < 2**20)."""
    if n == 0:
        return bytes([0])
    if n < 256:
        return bytes([1, n])
    if n <= 8192:
        return bytes([7]) + struct.pack('<H', n)
    if n < 4 * 65536 and n % 4 == 0:
        return bytes([12]) + struct.pack('<H', n // 4)
    return bytes([15]) + struct.pack('<H', n >> 4) + bytes([n & 15])


def align(shift):
    """Byte pick_align() decodes to 1 << shift (168 = 21 * 8: exact when the cap is 1 MiB)."""
    return bytes([shift]) if shift <= 4 else bytes([168 + shift])


def alloc(slot, n, shift=4, flags=NOWARN, free_how=0):
    return bytes([ALLOC, slot, free_how]) + size(n) + align(shift) + bytes([flags])


def realloc(slot, n, shift=4, flags=NOWARN, unknown=False):
    return (bytes([REALLOC, slot, 1 if unknown else 0]) + size(n) + align(shift) +
            bytes([flags]))


def free(slot, how=0):
    return bytes([FREE, slot, how])


def check():
    return bytes([CHECK, 0])


def invalid(slot, kind, n=100, extra=0):
    return bytes([INVALID, slot, kind]) + struct.pack('<H', n) + bytes([extra])


def inject_alloc(slot, n):
    return bytes([INJECT, slot, 0]) + size(n) + align(4) + bytes([NOWARN])


def inject_realloc(slot, n):
    return bytes([INJECT | 0x80, slot, 0]) + size(n) + align(4) + bytes([NOWARN])


api = {
    'basic': alloc(0, 64) + realloc(0, 4096, flags=ZERO | NOWARN) + check() +
             free(0),
    'many-small': b''.join(alloc(i, 8 * i + 1, shift=i % 5) for i in range(32)) +
                  b''.join(realloc(i, 3 * i + 2, unknown=i % 2 == 1)
                           for i in range(32)) + check() +
                  b''.join(free(i, how=i % 4) for i in range(0, 32, 2)),
    'large': alloc(1, 300000, shift=12, flags=ZERO | NOWARN) +
             realloc(1, (1 << 20) - 1, shift=12, flags=ZERO | NOWARN) +
             realloc(1, 100, shift=3) + check() + free(1, how=1),
    'aligned': b''.join(alloc(i, 100 + i, shift=5 + i) for i in range(8)) +
               b''.join(realloc(i, 5000, shift=12 - i) for i in range(8)) +
               check(),
    'sentinel': alloc(2, 0, shift=6) + realloc(2, 100, flags=ZERO | NOWARN) +
                realloc(2, 0) + realloc(2, 33) + free(2, how=2),
    'errors': alloc(3, 200) + b''.join(invalid(3, k | 0x40) for k in range(5)) +
              invalid(4, 0x80) + inject_alloc(5, 64) + inject_realloc(3, 9000) +
              inject_realloc(3, 10) + check(),
    'churn': b''.join(alloc(i % 7, (i * 977) % 9000, shift=i % 4) +
                      realloc((i + 3) % 7, (i * 131) % 300, flags=ZERO | NOWARN)
                      for i in range(40)),
}

# fuzz_env.c: first byte picks the target.
OPEN_NAME, OPEN_BACKEND, OPEN_PATH, OPTION_NUMBER = 0, 1, 2, 3
FAIL_CONFIG, DEBUG_LETTERS, OPTIONS_SPLIT = 4, 5, 6
VARS = ['KALLOC_PAGE_GUARD', 'KALLOC_PAGE_CACHE', 'KALLOC_KV_THRESHOLD',
        'KALLOC_KV_SMALL', 'KALLOC_SLAB_DECAY_MS', 'KALLOC_STATS',
        'KALLOC_LEAKS', 'KALLOC_DEBUG']


def var(name, value):
    return bytes([VARS.index(name)]) + value + b'\0'


env = {
    'name-libc': bytes([OPEN_NAME]) + b'libc\0\0',
    'name-unknown': bytes([OPEN_NAME]) + b'no_such_backend\0\1',
    'name-bad-chars': bytes([OPEN_NAME]) + b'Sl@b..\0\0opt',
    'name-so': bytes([OPEN_NAME]) + b'kalloc-libc.so\0\1',
    'name-empty': bytes([OPEN_NAME]) + b'\0\0',
    'backend-options': bytes([OPEN_BACKEND, 0]) + b'key=value,x=1,,=\0',
    'backend-env': bytes([OPEN_BACKEND, 1]) + b'\0' +
                   var('KALLOC_PAGE_GUARD', b'1') + var('KALLOC_PAGE_CACHE', b'0x100000') +
                   var('KALLOC_KV_THRESHOLD', b'-1') + var('KALLOC_KV_SMALL', b'libc') +
                   var('KALLOC_SLAB_DECAY_MS', b'99999999999999999999'),
    'backend-env-kv': bytes([OPEN_BACKEND, 2]) + b'\1\0' +
                      var('KALLOC_KV_SMALL', b'page') + var('KALLOC_KV_THRESHOLD', b'4096'),
    'path-libc': bytes([OPEN_PATH, 0]) + b'kalloc-libc.so',
    'path-dir': bytes([OPEN_PATH, 0]) + b'kalloc-libc.so.p',
    'path-missing': bytes([OPEN_PATH, 1]) + b'kalloc-none.so',
    'number-decimal': bytes([OPTION_NUMBER, 1]) + struct.pack('<i', 7) + b'123456',
    'number-hex': bytes([OPTION_NUMBER, 2]) + struct.pack('<i', -1) + b'0x7fffffff',
    'number-junk': bytes([OPTION_NUMBER, 4]) + struct.pack('<i', 42) + b'12ms',
    'number-empty': bytes([OPTION_NUMBER, 0]) + struct.pack('<i', 3),
    'backend-core-options': bytes([OPEN_BACKEND, 0]) + b'stats=1,debug=FZPU,leaks=0,x=1\0' +
                            var('KALLOC_DEBUG', b'FZ') + var('KALLOC_STATS', b'yes'),
    'fail-full': bytes([FAIL_CONFIG]) +
                 b'probability:50,interval:3,times:-1,space:4096,seed:7,verbose:1',
    'fail-bad-field': bytes([FAIL_CONFIG]) + b'probability:5,often:2',
    'fail-range': bytes([FAIL_CONFIG]) + b'probability:101',
    'debug-all': bytes([DEBUG_LETTERS]) + b'FZPU',
    'debug-mixed': bytes([DEBUG_LETTERS]) + b'fz1-x',
    'split-mixed': bytes([OPTIONS_SPLIT, 200, 200]) + b'a=1,stats=1,,debug=FZ,b=2,leaks=1',
    'split-tight': bytes([OPTIONS_SPLIT, 0, 0]) + b'abcdefghijkl=1,debug=FZPU',
    'number-huge': bytes([OPTION_NUMBER, 3]) + struct.pack('<i', 0) + b'-99999999999999999999',
}

for sub, seeds in (('api', api), ('env', env)):
    d = os.path.join(HERE, 'corpus', sub)
    os.makedirs(d, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(d, name), 'wb') as f:
            f.write(data)
