#!/usr/bin/env python3
"""Reference vectors for arena's commit-reveal v4 ("CRv4", timelocked weights), produced with
the real Bittensor SDK: bittensor 10.5.0 + bittensor-drand 2.0.0 (Rust/PyO3 extension that
links ideal-lab5/timelock `tle` at git rev 5416406c and w3f-bls 0.1.3).

What it computes (one JSON document on stdout):
  1. reveal_rounds: `bittensor_drand.get_encrypted_commit_v2` (the function
     `commit_timelocked_weights_extrinsic` calls) on a table of epoch-schedule states. That
     function reads the wall clock (Rust `SystemTime::now()`), so the clock is pinned per case
     (see "Pinned clock and entropy" below) and the pinned `now_ns` is recorded as an input.
     Each case also carries the intermediates of a Python port of the algorithm (first reveal
     block, target ingest block, seconds until ingest), and the script ASSERTS that the port
     reproduces the SDK's reveal round, so the formula in crv4_notes.md is checked.
  2. commits: real SDK commits (`get_encrypted_commit_v2`) whose clock is pinned so that the
     reveal round is a PAST drand quicknet round with a published signature (1000 and 2000).
     Each is then decrypted offline with that signature (`decrypt_with_signature`, the SDK's own
     tld path) and the plaintext is checked against an independent SCALE encoding of
     WeightsTlockPayload{hotkey, uids, values, version_key}. One commit uses the SDK's real
     OsRng; another runs with a replayed entropy stream whose bytes are recorded, so a Rust
     port that feeds the same bytes to `tle` must reproduce the ciphertext byte for byte.
  3. encrypt_at_round: `bittensor_drand.encrypt_at_round` for rounds 1000/2000 (SCALE
     UserData{encrypted_data: Vec<u8>, reveal_round: u64} wrapper) and their decryption; a
     wrong-signature decryption (error expected).
  4. ciphertext layout: every ciphertext is parsed here (pure Python) into the ark-serialize
     compressed fields of TLECiphertext<TinyBLS381> and the parse must consume it exactly. For
     the replayed-entropy commits, U (G2 point, via pure-Python BLS12-381 G2 arithmetic), W and
     the AES-256-GCM body (pycryptodome) are re-derived from the entropy bytes and must match.
  5. legacy_v1 (optional): bittensor-drand 1.3.0 `get_encrypted_commit` (block-modulo epochs,
     removed in 2.0.0) on a few inputs, plus a legacy commit for round 1000 decrypted by 2.0.0.
     Runs only when ARENA_LEGACY_DRAND_DIR points at an unpacked 1.3.0 wheel (see Rerun).

Pinned clock and entropy (why an LD_PRELOAD shim): the script compiles a ~60-line C shim (source
embedded below, needs `cc`) and re-executes itself with LD_PRELOAD. The shim changes nothing
unless the script sets, around ONE SDK call, ARENA_FAKE_NOW_NS (then clock_gettime(CLOCK_REALTIME)
returns that instant) or ARENA_FAKE_RNG_FILE (then getrandom()/syscall(SYS_getrandom) serve
bytes read sequentially from that file, and each request size is logged). The SDK code itself is
untouched. Without the shim, reveal rounds would depend on the time of the run.

Drand facts used (quicknet, chain hash 52db9ba7...e971): round 1000 signature from
ideal-lab5/timelock tle/src/tlock.rs test `tlock_encrypt_decrypt_drand_quicknet_works` and
opentensor/subtensor pallets/drand/src/tests.rs DRAND_PULSE; round 2000 signature from
opentensor/subtensor pallets/commitments/src/{mock.rs,tests.rs}. A successful decryption proves a
signature is the IBE key for sha256(round.to_be_bytes()) under the quicknet public key.

Non-deterministic between runs (marked "nondeterministic"): ciphertexts made with the real OsRng
(commits/alice_round1000_osrng, encrypt_at_round, legacy_v1.round1000). Everything else,
including the replayed-entropy commits, is deterministic.

Rerun (from the repository root; needs the venv of tests/reference/chain_vectors.py and `cc`):
    /opt/btenv/bin/pip download --no-deps --only-binary :all: bittensor-drand==1.3.0 -d /tmp/bd13
    python3 -m zipfile -e /tmp/bd13/bittensor_drand-1.3.0-*.whl /tmp/bd13/whl
    ARENA_LEGACY_DRAND_DIR=/tmp/bd13/whl \
      /opt/btenv/bin/python tests/reference/crv4_vectors.py > tests/fixtures/chain/crv4_vectors.json
(without ARENA_LEGACY_DRAND_DIR the legacy_v1 section is replaced by a "skipped" note).
Takes a few seconds; needs no network after the wheel download.
"""

import hashlib
import importlib.metadata
import json
import math
import os
import platform
import struct
import subprocess
import sys
import tempfile

SHIM_C = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

static char cur_path[4096];
static int cur_fd = -1;

static long fake_fill(const char *path, void *buf, size_t n) {
    if (strcmp(path, cur_path) != 0) {
        if (cur_fd >= 0) close(cur_fd);
        cur_fd = open(path, O_RDONLY);
        if (cur_fd < 0) abort();
        strncpy(cur_path, path, sizeof(cur_path) - 1);
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(cur_fd, (char *)buf + got, n - got);
        if (r <= 0) abort(); /* replayed entropy stream exhausted */
        got += (size_t)r;
    }
    const char *log = getenv("ARENA_FAKE_RNG_LOG");
    if (log) {
        int lfd = open(log, O_WRONLY | O_APPEND | O_CREAT, 0644);
        if (lfd >= 0) { dprintf(lfd, "%zu\n", n); close(lfd); }
    }
    return (long)n;
}

ssize_t getrandom(void *buf, size_t n, unsigned int flags) {
    const char *p = getenv("ARENA_FAKE_RNG_FILE");
    if (p) return fake_fill(p, buf, n);
    ssize_t (*real)(void *, size_t, unsigned int) = dlsym(RTLD_NEXT, "getrandom");
    return real(buf, n, flags);
}

long syscall(long no, ...) {
    va_list ap;
    va_start(ap, no);
    long a1 = va_arg(ap, long), a2 = va_arg(ap, long), a3 = va_arg(ap, long);
    long a4 = va_arg(ap, long), a5 = va_arg(ap, long), a6 = va_arg(ap, long);
    va_end(ap);
    if (no == SYS_getrandom) {
        const char *p = getenv("ARENA_FAKE_RNG_FILE");
        if (p) return fake_fill(p, (void *)a1, (size_t)a2);
    }
    long (*real)(long, ...) = dlsym(RTLD_NEXT, "syscall");
    return real(no, a1, a2, a3, a4, a5, a6);
}

int clock_gettime(clockid_t clk, struct timespec *ts) {
    const char *f = getenv("ARENA_FAKE_NOW_NS");
    if (f && clk == CLOCK_REALTIME) {
        long long ns = atoll(f);
        ts->tv_sec = (time_t)(ns / 1000000000LL);
        ts->tv_nsec = (long)(ns % 1000000000LL);
        return 0;
    }
    int (*real)(clockid_t, struct timespec *) = dlsym(RTLD_NEXT, "clock_gettime");
    return real(clk, ts);
}
"""


def ensure_shim():
    """Compile the shim and re-exec under LD_PRELOAD (once)."""
    if os.environ.get("ARENA_CRV4_SHIM"):
        return
    tmp = tempfile.mkdtemp(prefix="arena-crv4-")
    src = os.path.join(tmp, "shim.c")
    lib = os.path.join(tmp, "shim.so")
    with open(src, "w") as f:
        f.write(SHIM_C)
    subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", lib, src, "-ldl"], check=True)
    env = dict(os.environ)
    env["ARENA_CRV4_SHIM"] = lib
    env["LD_PRELOAD"] = lib + ((" " + env["LD_PRELOAD"]) if env.get("LD_PRELOAD") else "")
    os.execve(sys.executable, [sys.executable] + sys.argv, env)


ensure_shim()

# Importing bittensor creates ~/.bittensor/{wallets,miners} unless READ_ONLY=1.
os.environ.setdefault("READ_ONLY", "1")

LEGACY_CHILD = len(sys.argv) == 3 and sys.argv[1] == "--legacy-child"
if not LEGACY_CHILD:  # the legacy child imports bittensor-drand 1.3.0 itself, nothing else
    import bittensor_drand as btd  # noqa: E402
    from bittensor_wallet import Keypair  # noqa: E402

    import bittensor.core.extrinsics.weights as bt_weights  # noqa: E402  (checked: uses v2)
    from bittensor.core.settings import version_as_int  # noqa: E402

NONDET = "nondeterministic"

# ---- drand quicknet (bittensor-drand 2.0.0 src/constants.rs; subtensor pallets/drand tests) ----
QUICKNET_PK_HEX = (
    "83cf0f2896adee7eb8b5f01fcad3912212c437e0073e911fb90022d3e760183c"
    "8c4b450b6a0a6c3ac6a5776a2d1064510d1fec758c921cc22b0e17e63aaf4bcb"
    "5ed66304de9cf809bd274ca73bab4af5a6e9c76a4bc09e76eae8991ef5ece45a"
)
QUICKNET_CHAIN_HASH = "52db9ba70e0cc0f6eaf7803dd07447a1f5477735fd3f661792ba94600c84e971"
GENESIS_TIME = 1692803367
DRAND_PERIOD = 3
SECURITY_BLOCK_OFFSET = 3
COMMIT_INCLUSION_BLOCK_OFFSET = 1
MAX_TEMPO = 50400
KNOWN_ROUNDS = {
    1000: {
        "signature": "b44679b9a59af2ec876b1a6b1ad52ea9b1615fc3982b19576350f93447cb1125"
        "e342b73a8dd2bacbe47e4b6b63ed5e39",
        "randomness": "fe290beca10872ef2fb164d2aa4442de4566183ec51c56ff3cd603d930e54fdd",
        "sources": [
            "ideal-lab5/timelock@5416406c tle/src/tlock.rs tlock_encrypt_decrypt_drand_quicknet_works",
            "opentensor/subtensor@14bc6f9f pallets/drand/src/tests.rs DRAND_PULSE",
        ],
    },
    2000: {
        "signature": "b6cb8f482a0b15d45936a4c4ea08e98a087e71787caee3f4d07a8a9843b1bc54"
        "23c6b3c22f446488b3137eaca799c77e",
        "randomness": None,
        "sources": [
            "opentensor/subtensor@14bc6f9f pallets/commitments/src/mock.rs DRAND_QUICKNET_SIG_2000_HEX "
            "(its comment says 'round 20000'; tests.rs two_timelocks_partial_then_full_reveal uses it "
            "for round 2000, and decryption below confirms 2000)",
        ],
    },
}


def version(pkg):
    try:
        return importlib.metadata.version(pkg)
    except importlib.metadata.PackageNotFoundError:
        return None


# ---------------------------------------------------------------- SCALE helpers (independent)
def compact(n):
    if n < 1 << 6:
        return bytes([n << 2])
    if n < 1 << 14:
        return struct.pack("<H", (n << 2) | 1)
    if n < 1 << 30:
        return struct.pack("<I", (n << 2) | 2)
    raw = n.to_bytes((n.bit_length() + 7) // 8, "little")
    return bytes([((len(raw) - 4) << 2) | 3]) + raw


def scale_payload(hotkey, uids, values, version_key):
    """SCALE(WeightsTlockPayload{hotkey: Vec<u8>, uids: Vec<u16>, values: Vec<u16>, version_key: u64})."""
    out = compact(len(hotkey)) + bytes(hotkey)
    out += compact(len(uids)) + b"".join(struct.pack("<H", u) for u in uids)
    out += compact(len(values)) + b"".join(struct.pack("<H", v) for v in values)
    out += struct.pack("<Q", version_key)
    return out


def read_compact(b, i):
    mode = b[i] & 3
    if mode == 0:
        return b[i] >> 2, i + 1
    if mode == 1:
        return struct.unpack_from("<H", b, i)[0] >> 2, i + 2
    if mode == 2:
        return struct.unpack_from("<I", b, i)[0] >> 2, i + 4
    n = (b[i] >> 2) + 4
    return int.from_bytes(b[i + 1 : i + 1 + n], "little"), i + 1 + n


def user_data(ct, reveal_round):
    """SCALE(UserData{encrypted_data: Vec<u8>, reveal_round: u64}) (bittensor-drand drand.rs)."""
    return compact(len(ct)) + ct + struct.pack("<Q", reveal_round)


def split_user_data(blob):
    n, i = read_compact(blob, 0)
    ct = blob[i : i + n]
    (rnd,) = struct.unpack_from("<Q", blob, i + n)
    assert i + n + 8 == len(blob)
    return ct, rnd


def parse_tle_ciphertext(ct):
    """ark-serialize (0.4, compressed) of TLECiphertext<TinyBLS381> at tle rev 5416406c:
    header: IBE Ciphertext{u: G2 (96 B compressed), v: Vec<u8>, w: Vec<u8>},
    body: Vec<u8> (= ark-serialized AESOutput{ciphertext: Vec<u8>, nonce: Vec<u8>}),
    cipher_suite: Vec<u8>. Every Vec is a u64 little-endian length + the bytes."""
    pos = 0

    def vec(buf, p):
        (n,) = struct.unpack_from("<Q", buf, p)
        assert p + 8 + n <= len(buf), "length past end"
        return buf[p + 8 : p + 8 + n], p + 8 + n

    u = ct[0:96]
    pos = 96
    v, pos = vec(ct, pos)
    w, pos = vec(ct, pos)
    body, pos = vec(ct, pos)
    suite, pos = vec(ct, pos)
    assert pos == len(ct), "trailing bytes"
    aes_ct, p2 = vec(body, 0)
    nonce, p2 = vec(body, p2)
    assert p2 == len(body)
    assert len(v) == 32 and len(w) == 32 and len(nonce) == 12 and suite == b"AES_GCM_"
    assert u[0] & 0x80, "compressed flag (0x80) must be set on the G2 point"
    return {
        "total_len": len(ct),
        "u_g2_compressed": u.hex(),
        "u_flags_byte0": u[0],
        "v_len": len(v),
        "v": v.hex(),
        "w_len": len(w),
        "w": w.hex(),
        "body_len": len(body),
        "aes_ciphertext_len": len(aes_ct),
        "aes_ciphertext_and_tag": aes_ct.hex(),
        "aes_nonce": nonce.hex(),
        "cipher_suite": suite.decode(),
        "layout": "u[96] | u64le(32) v[32] | u64le(32) w[32] | u64le(body_len) "
        "(u64le(n+16) aes_ct_tag[n+16] | u64le(12) nonce[12]) | u64le(8) 'AES_GCM_'",
        "len_formula": "plaintext_len + 244",
    }


def identity_hex(rnd):
    return hashlib.sha256(rnd.to_bytes(8, "big")).hexdigest()


# ---------------------------------------------------------------- independent re-derivation
# Pure-Python BLS12-381 G2 arithmetic, used only to re-derive the replayed-entropy commits
# from their entropy bytes (everything except V, which needs a pairing; the SDK's successful
# decryption covers V).
BLS_P = int(
    "1a0111ea397fe69a4b1ba7b6434bacd764774b84f38512bf6730d2a0f6b0f6241eabfffeb153ffffb9feffffffffaaab", 16
)
BLS_R = int("73eda753299d7d483339d80809a1d80553bda402fffe5bfeffffffff00000001", 16)
G2_X = (
    int("024aa2b2f08f0a91260805272dc51051c6e47ad4fa403b02b4510b647ae3d1770bac0326a805bbefd48056c8c121bdb8", 16),
    int("13e02b6052719f607dacd3a088274f65596bd0d09920b61ab5da61bbdc7f5049334cf11213945d57e5ac7d055d042b7e", 16),
)
G2_Y = (
    int("0ce5d527727d6e118cc9cdc6da2e351aadfd9baa8cbdd3a76d429a695160d12c923ac9cc3baca289e193548608b82801", 16),
    int("0606c4a02ea734cc32acd2b02bc28b99cb3e287e85a763af267492ab572e99ab3f370d275cec1da1aaa9075ff05f79be", 16),
)
G2_COMPRESSED = (
    "93e02b6052719f607dacd3a088274f65596bd0d09920b61ab5da61bbdc7f5049334cf11213945d57e5ac7d055d042b7e"
    "024aa2b2f08f0a91260805272dc51051c6e47ad4fa403b02b4510b647ae3d1770bac0326a805bbefd48056c8c121bdb8"
)


def _f2mul(a, b):
    return ((a[0] * b[0] - a[1] * b[1]) % BLS_P, (a[0] * b[1] + a[1] * b[0]) % BLS_P)


def _f2add(a, b):
    return ((a[0] + b[0]) % BLS_P, (a[1] + b[1]) % BLS_P)


def _f2sub(a, b):
    return ((a[0] - b[0]) % BLS_P, (a[1] - b[1]) % BLS_P)


def _f2inv(a):
    ni = pow((a[0] * a[0] + a[1] * a[1]) % BLS_P, BLS_P - 2, BLS_P)
    return (a[0] * ni % BLS_P, (-a[1]) * ni % BLS_P)


def _g2_add(p1, p2):
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    (x1, y1), (x2, y2) = p1, p2
    if x1 == x2:
        if _f2add(y1, y2) == (0, 0):
            return None
        lam = _f2mul(_f2mul((3, 0), _f2mul(x1, x1)), _f2inv(_f2mul((2, 0), y1)))
    else:
        lam = _f2mul(_f2sub(y2, y1), _f2inv(_f2sub(x2, x1)))
    x3 = _f2sub(_f2sub(_f2mul(lam, lam), x1), x2)
    return (x3, _f2sub(_f2mul(lam, _f2sub(x1, x3)), y1))


def g2_mul_gen(k):
    acc, base = None, (G2_X, G2_Y)
    while k:
        if k & 1:
            acc = _g2_add(acc, base)
        base = _g2_add(base, base)
        k >>= 1
    return acc


def g2_compress(pt):
    """zcash/arkworks BLS12-381 G2 compressed: x.c1 || x.c0 big-endian, 0x80 = compressed,
    0x20 = y is the lexicographically larger root (Fq2 compared c1 first)."""
    (x, y) = pt
    neg = ((-y[0]) % BLS_P, (-y[1]) % BLS_P)
    b = bytearray(x[1].to_bytes(48, "big") + x[0].to_bytes(48, "big"))
    b[0] |= 0x80 | (0x20 if (y[1], y[0]) > (neg[1], neg[0]) else 0)
    return bytes(b)


def rederive_commit(entropy, plaintext, parsed):
    """Recompute U, W and the AES-GCM body of a tle ciphertext from the entropy stream."""
    from Crypto.Cipher import AES  # pycryptodome (a bittensor dependency)

    esk = entropy[0:32]
    pos = 32
    while True:  # ark-ff 0.4 Fr::rand: 4 LE u64 limbs, top bit masked, retry while >= r
        limbs = int.from_bytes(entropy[pos : pos + 32], "little") & ((1 << 255) - 1)
        pos += 32
        if limbs < BLS_R:
            break
    # The limbs are taken as the MONTGOMERY form; the field element is limbs * R^-1 mod r.
    t = limbs * pow(pow(2, 256, BLS_R), -1, BLS_R) % BLS_R
    sigma = hashlib.sha256(t.to_bytes(32, "little")).digest()  # h4(serialize_compressed(t))
    r = int.from_bytes(hashlib.sha256(sigma + esk).digest(), "big") % BLS_R  # h3(sigma, esk)
    u = g2_compress(g2_mul_gen(r))
    w = bytes(a ^ b for a, b in zip(esk, hashlib.sha256(sigma).digest()))  # esk XOR h4(sigma)
    nonce = entropy[pos : pos + 12]
    pos += 12
    aes = AES.new(esk, AES.MODE_GCM, nonce=nonce)  # AES-256-GCM, empty AAD, 16-byte tag
    body_ct, tag = aes.encrypt_and_digest(plaintext)
    assert pos == len(entropy)
    checks = {
        "u": u.hex() == parsed["u_g2_compressed"],
        "w": w.hex() == parsed["w"],
        "aes_nonce": nonce.hex() == parsed["aes_nonce"],
        "aes_ciphertext_and_tag": (body_ct + tag).hex() == parsed["aes_ciphertext_and_tag"],
    }
    assert all(checks.values()), checks
    return {
        "esk": esk.hex(),
        "fr_limbs_le_masked": limbs.to_bytes(32, "little").hex(),
        "t_canonical_le": t.to_bytes(32, "little").hex(),
        "sigma": sigma.hex(),
        "r_scalar_be": r.to_bytes(32, "big").hex(),
        "checks_passed": sorted(checks),
        "not_checked": "v = sigma XOR sha256(serialize_compressed(e(r*P_pub, H(id)))) (needs a pairing)",
    }


# ---------------------------------------------------------------- pinned clock / entropy
class pinned_clock:
    def __init__(self, now_ns):
        self.now_ns = now_ns

    def __enter__(self):
        os.environ["ARENA_FAKE_NOW_NS"] = str(self.now_ns)

    def __exit__(self, *a):
        del os.environ["ARENA_FAKE_NOW_NS"]


def entropy_stream(label, n=4096):
    """Deterministic bytes: SHA-256(label || u32be(counter)) blocks, concatenated."""
    out = b""
    c = 0
    while len(out) < n:
        out += hashlib.sha256(label + c.to_bytes(4, "big")).digest()
        c += 1
    return out[:n]


def with_replayed_entropy(label, fn):
    """Run fn() with getrandom served from a file; return (result, [request sizes], bytes used)."""
    stream = entropy_stream(label)
    d = tempfile.mkdtemp(prefix="arena-crv4-rng-")
    path = os.path.join(d, "stream.bin")
    log = os.path.join(d, "log.txt")
    with open(path, "wb") as f:
        f.write(stream)
    os.environ["ARENA_FAKE_RNG_LOG"] = log
    os.environ["ARENA_FAKE_RNG_FILE"] = path
    try:
        res = fn()
    finally:
        del os.environ["ARENA_FAKE_RNG_FILE"]
        del os.environ["ARENA_FAKE_RNG_LOG"]
    sizes = [int(x) for x in open(log).read().split()] if os.path.exists(log) else []
    used = sum(sizes)
    return res, sizes, stream[:used]


# ---------------------------------------------------------------- Python port (checked vs SDK)
def should_run_epoch(s, block):
    if s["tempo"] == 0:
        return False
    if s["pending_epoch_at"] > 0 and block >= s["pending_epoch_at"]:
        return True
    if s["blocks_since_last_step"] > MAX_TEMPO:
        return True
    return max(0, block - s["last_epoch_block"]) >= s["tempo"]


def epoch_pre_coinbase(s, block):
    return s["subnet_epoch_index"] + (1 if should_run_epoch(s, block) else 0)


def run_coinbase(s, block):
    n = dict(s)
    n["blocks_since_last_step"] += 1
    n["current_block"] = block
    if should_run_epoch(n, block):
        n["last_epoch_block"] = block
        n["pending_epoch_at"] = 0
        n["subnet_epoch_index"] += 1
        n["blocks_since_last_step"] = 0
    return n


def predict_first_reveal_block(s, reveal_period):
    if s["tempo"] == 0:
        raise ValueError("TempoIsZero")
    ext = s["current_block"] + COMMIT_INCLUSION_BLOCK_OFFSET
    post = dict(s)  # head state is the state "just before" ext = head + 1
    commit_epoch = epoch_pre_coinbase(post, ext)
    target = commit_epoch + reveal_period
    max_sim = reveal_period * MAX_TEMPO + MAX_TEMPO
    for r in range(ext, ext + max_sim + 1):
        if epoch_pre_coinbase(post, r) == target:
            return r, commit_epoch, target
        post = run_coinbase(post, r)
    raise ValueError("BoundExceeded")


def port_reveal_round(s, reveal_period, block_time, now_ns):
    first, commit_epoch, target_epoch = predict_first_reveal_block(s, reveal_period)
    ingest = first + SECURITY_BLOCK_OFFSET
    blocks_until = max(0, ingest - s["current_block"])
    secs_until = float(blocks_until) * float(block_time)
    now_secs = float(now_ns // 10**9) + float(now_ns % 10**9) / 1e9  # Duration::as_secs_f64
    target_secs = now_secs + secs_until
    q = math.floor((target_secs - float(GENESIS_TIME)) / float(DRAND_PERIOD))
    rnd = max(q, 0)  # Rust `f64 as u64` saturates negatives to 0
    if rnd < 1:
        rnd = 1
    return {
        "commit_block_assumed": s["current_block"] + COMMIT_INCLUSION_BLOCK_OFFSET,
        "commit_epoch": commit_epoch,
        "target_epoch": target_epoch,
        "first_reveal_block": first,
        "target_ingest_block": ingest,
        "blocks_until_ingest": blocks_until,
        "secs_until_ingest": secs_until,
        "now_secs_f64": now_secs,
        "target_secs_f64": target_secs,
        "reveal_round": rnd,
    }


STATE_KEYS = (
    "last_epoch_block",
    "pending_epoch_at",
    "subnet_epoch_index",
    "tempo",
    "blocks_since_last_step",
    "current_block",
)


def sdk_commit(state, reveal_period, block_time, hotkey, uids, values, version_key, now_ns):
    with pinned_clock(now_ns):
        return btd.get_encrypted_commit_v2(
            uids=list(uids),
            weights=list(values),
            version_key=version_key,
            last_epoch_block=state["last_epoch_block"],
            pending_epoch_at=state["pending_epoch_at"],
            subnet_epoch_index=state["subnet_epoch_index"],
            tempo=state["tempo"],
            blocks_since_last_step=state["blocks_since_last_step"],
            current_block=state["current_block"],
            subnet_reveal_period_epochs=reveal_period,
            block_time=block_time,
            hotkey=bytes(hotkey),
        )


def st(last, pending, idx, tempo, bsls, cur):
    return dict(
        last_epoch_block=last,
        pending_epoch_at=pending,
        subnet_epoch_index=idx,
        tempo=tempo,
        blocks_since_last_step=bsls,
        current_block=cur,
    )


NOW = 1_750_000_000_000_000_000  # 2025-06-15T15:06:40Z, in ns

REVEAL_CASES = [
    # name, state, reveal_period, block_time, now_ns, note
    ("finney_like_mid_epoch", st(5_000_000, 0, 13_000, 360, 100, 5_000_100), 1, 12.0, NOW,
     "tempo 360, 100 blocks into the epoch"),
    ("commit_lands_on_fire_block", st(5_000_000, 0, 13_000, 360, 359, 5_000_359), 1, 12.0, NOW,
     "head+1 = last+tempo: the commit block already belongs to the next epoch (look-ahead)"),
    ("head_is_fire_block", st(5_000_000, 0, 13_000, 360, 360, 5_000_360), 1, 12.0, NOW,
     "head = last+tempo (state read before the epoch ran at head is impossible on chain; "
     "pure function behaviour only)"),
    ("reveal_period_3_tempo_99", st(1_234_500, 0, 42, 99, 10, 1_234_510), 3, 12.0, NOW + 123_456_789,
     "fractional now"),
    ("pending_epoch_before_auto", st(80, 95, 0, 20, 11, 91), 1, 12.0, NOW,
     "bittensor-drand epoch_schedule_vectors.rs pending_fires_before_auto (reveal block 95)"),
    ("cycle_reset_vector", st(10, 0, 0, 50, 0, 10), 1, 12.0, NOW,
     "bittensor-drand epoch_schedule_vectors.rs cycle_reset (reveal block 60)"),
    ("safety_net_bsls_over_max_tempo", st(100, 0, 7, 360, MAX_TEMPO + 1, 200), 1, 12.0, NOW,
     "BlocksSinceLastStep > MAX_TEMPO makes the next block fire"),
    ("fast_blocks_localnet", st(1000, 0, 5, 10, 3, 1003), 2, 0.25, NOW + 999_999_999,
     "block_time 0.25 s (fast-blocks localnet)"),
    ("reveal_period_0", st(5_000_000, 0, 13_000, 360, 100, 5_000_100), 0, 12.0, NOW,
     "target epoch = commit epoch: first block is the commit block itself"),
    ("floor_exactly_on_round_boundary", st(10, 0, 0, 50, 0, 10), 1, 12.0,
     (GENESIS_TIME + 3 * 5_000_000) * 10**9 - 53 * 12 * 10**9,
     "now + secs_until_ingest = genesis + 3*5_000_000 exactly -> round 5_000_000"),
    ("floor_just_below_round_boundary", st(10, 0, 0, 50, 0, 10), 1, 12.0,
     (GENESIS_TIME + 3 * 5_000_000) * 10**9 - 53 * 12 * 10**9 - 1_000,
     "1 us earlier -> round 4_999_999"),
    ("clamp_before_genesis", st(10, 0, 0, 50, 0, 10), 1, 12.0, 1_600_000_000 * 10**9,
     "target before quicknet genesis -> saturates to 0 -> clamped to 1"),
]


def reveal_round_vectors(hotkey):
    out = []
    for name, state, period, bt, now_ns, note in REVEAL_CASES:
        port = port_reveal_round(state, period, bt, now_ns)
        ct, rnd = sdk_commit(state, period, bt, hotkey, [0], [65535], 1, now_ns)
        assert rnd == port["reveal_round"], (name, rnd, port)
        parse_tle_ciphertext(bytes(ct))
        out.append(
            {
                "name": name,
                "note": note,
                "inputs": {
                    **{k: state[k] for k in STATE_KEYS},
                    "subnet_reveal_period_epochs": period,
                    "block_time": bt,
                    "now_unix_ns": now_ns,
                },
                "sdk_reveal_round": rnd,
                "port_intermediates": port,
            }
        )
    # tempo 0 is an error in the SDK (EpochScheduleError::TempoIsZero)
    try:
        sdk_commit(st(10, 0, 0, 0, 0, 10), 1, 12.0, hotkey, [0], [1], 1, NOW)
        err = None
    except ValueError as e:
        err = str(e)
    assert err is not None
    out.append(
        {
            "name": "tempo_zero_error",
            "inputs": {**st(10, 0, 0, 0, 0, 10), "subnet_reveal_period_epochs": 1, "block_time": 12.0,
                       "now_unix_ns": NOW},
            "sdk_error": err,
        }
    )
    return out


def now_for_round(state, period, bt, rnd, frac_ns=500_000_000):
    """A pinned clock instant that makes the SDK pick drand round `rnd` (mid-period)."""
    port = port_reveal_round(state, period, bt, NOW)
    secs = port["secs_until_ingest"]
    ns = (GENESIS_TIME + rnd * DRAND_PERIOD) * 10**9 + frac_ns - int(round(secs * 10**9))
    assert port_reveal_round(state, period, bt, ns)["reveal_round"] == rnd
    return ns


def commit_record(name, state, period, bt, hotkey, uids, values, version_key, rnd, replay_label=None):
    now_ns = now_for_round(state, period, bt, rnd)
    call = lambda: sdk_commit(state, period, bt, hotkey, uids, values, version_key, now_ns)  # noqa: E731
    rec = {"name": name}
    if replay_label is None:
        ct, got_round = call()
        rec["nondeterministic"] = "ciphertext uses the SDK's real OsRng"
    else:
        (ct, got_round), sizes, used = with_replayed_entropy(replay_label, call)
        # Second run with the same stream must give identical bytes.
        (ct2, _), sizes2, _ = with_replayed_entropy(replay_label, call)
        assert bytes(ct2) == bytes(ct) and sizes2 == sizes
        rec["replayed_entropy"] = {
            "stream": "SHA-256(label || u32be(counter)) blocks concatenated; only the used prefix is listed",
            "label": replay_label.decode(),
            "request_sizes": sizes,
            "bytes_used": used.hex(),
            "consumption": "getrandom #1 (32 B) = esk passed to tle(); then tle's rng: "
            "ark-ff Fr::rand = next_u64 x4 per attempt (each 8 bytes, little-endian; retried "
            "while >= r after masking the top bit), then AES-GCM nonce = fill_bytes(12)",
        }
    ct = bytes(ct)
    assert got_round == rnd
    expected_plain = scale_payload(hotkey, uids, values, version_key)
    sig = KNOWN_ROUNDS[rnd]["signature"]
    plain = bytes(btd.decrypt_with_signature(user_data(ct, rnd), sig))
    assert plain == expected_plain, (plain.hex(), expected_plain.hex())
    rec.update(
        {
            "inputs": {
                **{k: state[k] for k in STATE_KEYS},
                "subnet_reveal_period_epochs": period,
                "block_time": bt,
                "now_unix_ns": now_ns,
                "hotkey": hotkey.hex(),
                "uids": list(uids),
                "values": list(values),
                "version_key": version_key,
            },
            "reveal_round": got_round,
            "identity_sha256_round_be": identity_hex(rnd),
            "drand_signature": sig,
            "commit_hex": ct.hex(),
            "commit_len": len(ct),
            "decrypted_payload_hex": plain.hex(),
            "payload_scale_independent_hex": expected_plain.hex(),
            "parsed": parse_tle_ciphertext(ct),
            "extrinsic": {
                "call": "SubtensorModule.commit_timelocked_mechanism_weights",
                "args": {
                    "netuid": 1,
                    "mecid": 0,
                    "commit": "commit_hex (BoundedVec<u8, 5000>: SCALE compact length + bytes)",
                    "reveal_round": got_round,
                    "commit_reveal_version": 4,
                },
                "commit_scale_hex": (compact(len(ct)) + ct).hex(),
            },
        }
    )
    if replay_label is not None:
        rec["independent_rederivation"] = rederive_commit(used, expected_plain, rec["parsed"])
    return rec


# ---------------------------------------------------------------- legacy (bittensor-drand 1.x)
LEGACY_CASES = [
    # name, current_block, netuid, tempo, reveal_period, block_time, now_ns
    ("legacy_sn1_tempo360", 5_000_100, 1, 360, 1, 12.0, NOW),
    ("legacy_sn37_tempo360_period2", 5_000_100, 37, 360, 2, 12.0, NOW + 250_000_000),
    ("legacy_last_block_of_epoch", 5_000_209, 0, 360, 1, 12.0, NOW),
    ("legacy_first_block_of_epoch", 5_000_210, 0, 360, 1, 12.0, NOW),
    ("legacy_fast_blocks", 1_003, 2, 10, 1, 0.25, NOW),
]


def legacy_port(current_block, netuid, tempo, period, block_time, now_ns):
    cur_epoch = (current_block + netuid + 1) // (tempo + 1)
    reveal_epoch = cur_epoch + period
    first = max(0, reveal_epoch * (tempo + 1) - (netuid + 1))
    ingest = first + SECURITY_BLOCK_OFFSET
    blocks_until = max(0, ingest - current_block)
    secs = float(blocks_until) * float(block_time)
    now_secs = float(now_ns // 10**9) + float(now_ns % 10**9) / 1e9
    rnd = max(math.floor((now_secs + secs - float(GENESIS_TIME)) / float(DRAND_PERIOD)), 0)
    return {
        "current_epoch": cur_epoch,
        "reveal_epoch": reveal_epoch,
        "first_reveal_block": first,
        "target_ingest_block": ingest,
        "blocks_until_ingest": blocks_until,
        "secs_until_ingest": secs,
        "reveal_round": max(rnd, 1),
    }


def legacy_child(hotkey_hex):
    """Runs inside a subprocess whose sys.path starts with an unpacked bittensor-drand 1.3.0 wheel."""
    import bittensor_drand as old

    hotkey = bytes.fromhex(hotkey_hex)
    out = {"bittensor_drand": version("bittensor-drand"), "cases": [], "round1000": None}
    for name, cb, netuid, tempo, period, bt, now_ns in LEGACY_CASES:
        with pinned_clock(now_ns):
            ct, rnd = old.get_encrypted_commit(
                uids=[0], weights=[65535], version_key=1, tempo=tempo, current_block=cb,
                netuid=netuid, subnet_reveal_period_epochs=period, block_time=bt, hotkey=hotkey,
            )
        port = legacy_port(cb, netuid, tempo, period, bt, now_ns)
        assert rnd == port["reveal_round"], (name, rnd, port)
        out["cases"].append({
            "name": name,
            "inputs": {"current_block": cb, "netuid": netuid, "tempo": tempo,
                       "subnet_reveal_period_epochs": period, "block_time": bt, "now_unix_ns": now_ns},
            "sdk_reveal_round": rnd,
            "port_intermediates": port,
        })
    # One legacy commit pinned to round 1000, to be decrypted by 2.0.0 in the parent.
    cb, netuid, tempo = 5_000_100, 1, 360
    secs = legacy_port(cb, netuid, tempo, 1, 12.0, NOW)["secs_until_ingest"]
    now_ns = (GENESIS_TIME + 1000 * DRAND_PERIOD) * 10**9 + 500_000_000 - int(round(secs * 10**9))
    with pinned_clock(now_ns):
        ct, rnd = old.get_encrypted_commit(
            uids=[3, 4], weights=[100, 200], version_key=7, tempo=tempo, current_block=cb,
            netuid=netuid, subnet_reveal_period_epochs=1, block_time=12.0, hotkey=hotkey,
        )
    assert rnd == 1000
    out["round1000"] = {
        "inputs": {"current_block": cb, "netuid": netuid, "tempo": tempo, "subnet_reveal_period_epochs": 1,
                   "block_time": 12.0, "now_unix_ns": now_ns, "uids": [3, 4], "values": [100, 200],
                   "version_key": 7, "hotkey": hotkey_hex},
        "commit_hex": bytes(ct).hex(),
    }
    json.dump(out, sys.stdout)


def legacy_vectors(hotkey):
    wheel_dir = os.environ.get("ARENA_LEGACY_DRAND_DIR")
    if not wheel_dir:
        return {"skipped": "set ARENA_LEGACY_DRAND_DIR to an unpacked bittensor-drand 1.3.0 wheel"}
    env = dict(os.environ)
    env["PYTHONPATH"] = wheel_dir
    res = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--legacy-child", hotkey.hex()],
        env=env, check=True, capture_output=True, text=True,
    )
    out = json.loads(res.stdout)
    assert out["bittensor_drand"].startswith("1."), out["bittensor_drand"]
    r = out["round1000"]
    ct = bytes.fromhex(r["commit_hex"])
    plain = bytes(btd.decrypt_with_signature(user_data(ct, 1000), KNOWN_ROUNDS[1000]["signature"]))
    assert plain == scale_payload(hotkey, [3, 4], [100, 200], 7)
    r["decrypted_payload_hex"] = plain.hex()
    r["parsed"] = parse_tle_ciphertext(ct)
    r["nondeterministic"] = "OsRng"
    out["note"] = (
        "bittensor-drand 1.x get_encrypted_commit (removed in 2.0.0): block-modulo epochs, "
        "for runtimes WITHOUT SubnetEpochIndex/LastEpochBlock/PendingEpochAt; same payload and "
        "ciphertext format (the round-1000 commit decrypts with bittensor-drand 2.0.0)"
    )
    return out


def main():
    sys.stdout.flush()
    # Sanity: bittensor 10.5.0's extrinsic is the v2 (stateful epoch) path.
    assert bt_weights.get_encrypted_commit_v2 is btd.get_encrypted_commit_v2

    assert g2_compress((G2_X, G2_Y)).hex() == G2_COMPRESSED
    alice = Keypair.create_from_uri("//Alice")
    hotkey = bytes(alice.public_key)
    assert len(hotkey) == 32

    for rnd, info in KNOWN_ROUNDS.items():
        if info["randomness"]:
            assert hashlib.sha256(bytes.fromhex(info["signature"])).hexdigest() == info["randomness"]

    doc = {
        "meta": {
            "generator": "tests/reference/crv4_vectors.py",
            "python": platform.python_version(),
            "bittensor": version("bittensor"),
            "bittensor_drand": version("bittensor-drand"),
            "bittensor_wallet": version("bittensor-wallet"),
            "sdk_version_as_int": version_as_int,
            "tle": "ideal-lab5/timelock git rev 5416406cfd32799e31e1795393d4916894de4468 (crates.io timelock 0.0.1 is the same code)",
        },
        "quicknet": {
            "public_key_g2_compressed": QUICKNET_PK_HEX,
            "chain_hash": QUICKNET_CHAIN_HASH,
            "genesis_time": GENESIS_TIME,
            "period_secs": DRAND_PERIOD,
            "scheme_id": "bls-unchained-g1-rfc9380",
            "hash_to_g1_dst": "BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_NUL_",
            "identity": "sha256(u64 round big-endian), hashed to G1 with the DST above (empty context)",
            "known_rounds": {
                str(r): {**v, "identity_sha256_round_be": identity_hex(r)} for r, v in KNOWN_ROUNDS.items()
            },
        },
        "constants": {
            "SECURITY_BLOCK_OFFSET": SECURITY_BLOCK_OFFSET,
            "COMMIT_INCLUSION_BLOCK_OFFSET": COMMIT_INCLUSION_BLOCK_OFFSET,
            "MAX_TEMPO": MAX_TEMPO,
            "max_simulation_blocks": "reveal_period * MAX_TEMPO + MAX_TEMPO",
            "commit_reveal_version": 4,
            "MAX_CRV3_COMMIT_SIZE_BYTES": 5000,
        },
        "hotkey": {"uri": "//Alice", "ss58": alice.ss58_address, "public_key": hotkey.hex()},
        "reveal_rounds": reveal_round_vectors(hotkey),
    }

    finney = st(5_000_000, 0, 13_000, 360, 100, 5_000_100)
    commits = [
        commit_record("alice_round1000_osrng", finney, 1, 12.0, hotkey,
                      [0, 1, 5], [65535, 32768, 1], version_as_int, 1000),
        commit_record("alice_round1000_replayed_entropy", finney, 1, 12.0, hotkey,
                      [0, 1, 5], [65535, 32768, 1], version_as_int, 1000,
                      replay_label=b"arena-crv4-entropy-1"),
        commit_record("alice_round2000_replayed_entropy_70_uids", st(10, 0, 0, 50, 0, 10), 1, 12.0,
                      hotkey, list(range(70)), [(i * 937) % 65536 for i in range(70)], 2_003_000,
                      2000, replay_label=b"arena-crv4-entropy-2"),
    ]
    doc["commits"] = commits

    # encrypt_at_round (SCALE UserData wrapper) + offline decryption; wrong signature fails.
    eat = []
    for rnd, msg in ((1000, b"arena crv4 encrypt_at_round"), (2000, b"")):
        blob, r = btd.encrypt_at_round(msg, rnd)
        blob = bytes(blob)
        ct, r2 = split_user_data(blob)
        assert r == r2 == rnd
        plain = bytes(btd.decrypt_with_signature(blob, KNOWN_ROUNDS[rnd]["signature"]))
        assert plain == msg
        eat.append(
            {
                "round": rnd,
                "plaintext_hex": msg.hex(),
                "user_data_hex": blob.hex(),
                "ciphertext_hex": ct.hex(),
                "parsed": parse_tle_ciphertext(ct),
                "nondeterministic": "OsRng",
            }
        )
    blob1000 = bytes.fromhex(eat[0]["user_data_hex"])
    try:
        btd.decrypt_with_signature(blob1000, KNOWN_ROUNDS[2000]["signature"])
        wrong = None
    except ValueError as e:
        wrong = str(e)
    assert wrong is not None
    doc["encrypt_at_round"] = eat
    doc["wrong_signature_error"] = {
        "ciphertext_round": 1000,
        "signature_round": 2000,
        "sdk_error": wrong,
    }

    # Size limit: the chain's BoundedVec<u8, 5000> bounds the payload at 5000 - 244 bytes.
    n_max = None
    for k in range(2000):
        if len(scale_payload(hotkey, range(k), range(k), 0)) + 244 > 5000:
            n_max = k - 1
            break
    doc["legacy_v1"] = legacy_vectors(hotkey)

    doc["size_limit"] = {
        "ciphertext_len": "len(SCALE(payload)) + 244",
        "payload_len_32_byte_hotkey": "33 + compact_len(k) + 2k + compact_len(k) + 2k + 8",
        "max_uids_in_one_commit": n_max,
    }

    json.dump(doc, sys.stdout, indent=1, sort_keys=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    if LEGACY_CHILD:
        legacy_child(sys.argv[2])
    else:
        main()
