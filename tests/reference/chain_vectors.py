#!/usr/bin/env python3
"""Reference vectors for arena's Bittensor chain code (wallets, keyfiles, weight emission,
commit hashes), computed with the real Bittensor SDK packages.

What it computes (all written as one JSON document to stdout):
  1. keypairs: sr25519 keypairs from two fixed BIP39 mnemonics and one fixed 32-byte seed
     (plus an ed25519 keypair of the dev phrase): public key, SS58 (format 42) address, the
     keyfile JSON the SDK serialises, and the exact files `bittensor_wallet.Wallet` writes
     (coldkey, coldkeypub.txt, hotkeys/<name>, hotkeys/<name>pub.txt) with their modes;
     an sr25519 signature made by the SDK over a fixed message (to VERIFY, not to compare).
  2. encrypted keyfiles: the exact bytes the SDK writes for a keyfile encrypted with
     "arena-test-password" and with a non-ASCII password ($NACL + argon2i + secretbox), the
     plaintext they decrypt to, plus an Ansible-Vault ("legacy") keyfile made by the SDK.
  3. weight emission: bittensor.utils.weight_utils.convert_weights_and_uids_for_emit,
     process_weights and normalize_max_weight on fixed inputs (float32 inputs are also
     given as their IEEE-754 bit patterns so no numpy RNG is needed on the Rust side).
  4. commit hashes: bittensor.utils.weight_utils.generate_weight_hash, with the netuid the
     SDK passes (get_mechid_storage_index = mechid * 4096 + netuid), and the SCALE preimage.
  5. the SN9/SN37 taoverse "secure hash": b64encode(sha256((hash + hotkey).encode())).
     taoverse 2.0.2 IS on PyPI, but it pins bittensor==9.0.0 and pulls torch/transformers
     (taoverse.model.utils imports transformers), so it is not installed here; its
     `get_hash_of_two_strings` is three lines and is reproduced verbatim with hashlib.

Package versions it was generated with (recorded again under "meta" at run time):
  bittensor 10.5.0 (classic Opentensor SDK; bittensor 11.x is a different, lean SDK without
  bittensor.utils.weight_utils), bittensor-wallet 4.1.1 (Rust extension), cyscale 0.5.0
  (provides `scalecodec`), numpy 2.4.6, CPython 3.11.

Not deterministic between runs (marked "nondeterministic" in the output):
  - every NaCl nonce / ciphertext and the Ansible-Vault salt (random per encryption);
  - every signature (sr25519 signing is randomised; ed25519 is not, but is marked anyway);
  - the ORDER OF THE KEYS in every keyfile JSON the SDK writes: bittensor-wallet builds it
    from a Rust HashMap (random iteration order per process), so compare parsed objects,
    never bytes. Everything else is deterministic.

Rerun (from the repository root; needs the venv described in the report):
    python3 -m venv /opt/btenv
    /opt/btenv/bin/pip install bittensor==10.5.0 bittensor-wallet==4.1.1
    /opt/btenv/bin/python tests/reference/chain_vectors.py > tests/fixtures/chain/sdk_vectors.json
It takes ~30 s: each NaCl key derivation is argon2i with 512 MiB of memory.
"""

import base64
import contextlib
import hashlib
import importlib.metadata
import json
import os
import platform
import stat
import struct
import sys
import tempfile
import unicodedata

# Importing bittensor creates ~/.bittensor/{wallets,miners} unless READ_ONLY=1.
os.environ.setdefault("READ_ONLY", "1")
os.environ.pop("USE_TORCH", None)  # numpy code paths in weight_utils

import numpy as np  # noqa: E402
from bittensor_wallet import Keypair, Wallet  # noqa: E402
from bittensor_wallet import keyfile as bt_keyfile  # noqa: E402

import bittensor.utils as bt_utils  # noqa: E402
from bittensor.core.settings import version_as_int  # noqa: E402
from bittensor.utils import weight_utils  # noqa: E402

DEV_PHRASE = "bottom drive obey lake curtain smoke basket hold race lonely fit walk"
# Generated once with bittensor_wallet.Keypair.generate_mnemonic(12), now fixed.
FIXED_PHRASE = "reform response ethics embody bread master word photo shoe outdoor lemon sample"
# Generated once with os.urandom(32), now fixed. Not valid UTF-8 (see "quirks").
FIXED_SEED_HEX = "3147ee6a9f330735d05656d5f682f986d8beccbd70a60ba6ee268a25b88e11ff"
PASSWORD = "arena-test-password"
PASSWORD_NON_ASCII = "pässwörd-Ωμέγα-密码-🔑"  # NFC
SIGNED_MESSAGE = b"arena: sign me (sr25519, substrate context)"

# The SDK does not expose its key derivation. These are argon2i13(password, NACL_SALT,
# opslimit 8, memlimit 536870912) -> 32 bytes, computed once with PyNaCl 1.6.2 and,
# identically, argon2-cffi 25.1.0 (type I, version 0x13, t=8, m=524288 KiB, p=1); both
# decrypted SDK-written files with it. Verified again below when PyNaCl is importable.
CROSSCHECK_DERIVED_KEYS = {
    PASSWORD: "0a890f7e0936bf97b0608195f0dea6a62e9268b6a4fd0b26c1d078e5ceada53a",
    PASSWORD_NON_ASCII: "8b6cc1f14aa34660bcdc1721eedaf44bd933af62dd35b0f3c3e3948f74903661",
}
NACL_SALT = b"\x13q\x83\xdf\xf1Z\t\xbc\x9c\x90\xb5Q\x879\xe9\xb1"  # bittensor-wallet keyfile.rs
NONDET = "nondeterministic"


def version(pkg):
    try:
        return importlib.metadata.version(pkg)
    except importlib.metadata.PackageNotFoundError:
        return None


def f32_bits(values):
    return [struct.unpack("<I", struct.pack("<f", float(v)))[0] for v in values]


def f64_bits(values):
    return [struct.unpack("<Q", struct.pack("<d", float(v)))[0] for v in values]


def array_record(a):
    """A numpy array as JSON: values (exact as f64), dtype, and bit patterns for floats."""
    a = np.asarray(a)
    values = a.tolist()
    if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        # JSON has no NaN/Infinity: non-finite values become null, the bits stay exact.
        values = [v if np.isfinite(v) else None for v in values]
    rec = {"dtype": str(a.dtype), "values": values}
    if a.dtype == np.float32:
        rec["f32_bits"] = f32_bits(a.tolist())
    elif a.dtype == np.float64:
        rec["f64_bits"] = f64_bits(a.tolist())
    return rec


def canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def file_record(path):
    data = open(path, "rb").read()
    rec = {
        "mode": oct(stat.S_IMODE(os.stat(path).st_mode)),
        "bytes_utf8": data.decode("utf-8"),
        "key_order": NONDET,
    }
    rec["parsed"] = json.loads(data)
    return rec


def error_of(fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - we record whatever the SDK raises
        return f"{type(e).__name__}: {e}"
    return None


# --------------------------------------------------------------------------------------
# 1. keypairs, keyfile JSON, wallet files, signatures
# --------------------------------------------------------------------------------------


def keypair_section(tmp):
    out = []
    specs = [
        ("dev_phrase", {"mnemonic": DEV_PHRASE}),
        ("fixed_phrase", {"mnemonic": FIXED_PHRASE}),
        ("fixed_seed", {"seed_hex": FIXED_SEED_HEX}),
    ]
    for i, (name, src) in enumerate(specs):
        if "mnemonic" in src:
            kp = Keypair.create_from_mnemonic(src["mnemonic"])
        else:
            try:  # a seed that is valid UTF-8 would be written as text (see quirks)
                bytes.fromhex(src["seed_hex"]).decode("utf-8")
                raise AssertionError("fixed seed must not be valid UTF-8")
            except UnicodeDecodeError:
                pass
            kp = Keypair.create_from_seed("0x" + src["seed_hex"])
        keyfile_bytes = bt_keyfile.serialized_keypair_to_keyfile_data(kp)
        parsed = json.loads(keyfile_bytes)
        reloaded = bt_keyfile.deserialize_keypair_from_keyfile_data(keyfile_bytes)
        assert reloaded.ss58_address == kp.ss58_address

        # What the wallet writes: regenerate a coldkey (unencrypted) and a hotkey from the
        # same source in a fresh wallet directory.
        wallet_root = os.path.join(tmp, f"wallets{i}")
        wname, hname = "arena", "hk"
        w = Wallet(name=wname, hotkey=hname, path=wallet_root)
        regen = dict(src)
        if "seed_hex" in regen:
            regen = {"seed": "0x" + regen.pop("seed_hex")}
        w.regenerate_coldkey(**regen, use_password=False, overwrite=True, suppress=True)
        w.regenerate_hotkey(**regen, use_password=False, overwrite=True, suppress=True)
        wdir = os.path.join(wallet_root, wname)
        files = {}
        for rel in ["coldkey", "coldkeypub.txt", f"hotkeys/{hname}", f"hotkeys/{hname}pub.txt"]:
            p = os.path.join(wdir, rel)
            files[rel] = file_record(p) if os.path.exists(p) else None
        dirs = {
            rel or ".": oct(stat.S_IMODE(os.stat(os.path.join(wdir, rel)).st_mode))
            for rel in ["", "hotkeys"]
        }

        sig = bytes(kp.sign(SIGNED_MESSAGE))
        tampered = SIGNED_MESSAGE + b"!"
        entry = {
            "name": name,
            "crypto_type": kp.crypto_type,
            "source": src,
            "public_key_hex": kp.public_key.hex(),
            "ss58_address": kp.ss58_address,
            "ss58_format": kp.ss58_format,
            "private_key_hex": parsed.get("privateKey"),
            "secret_seed": parsed.get("secretSeed"),
            "keyfile_json_bytes_utf8": keyfile_bytes.decode("utf-8"),
            "keyfile_json_key_order": NONDET,
            "keyfile_json": parsed,
            "keyfile_json_canonical": canonical(parsed),
            "wallet_files": files,
            "wallet_dir_modes_under_umask_022": dirs,
            "signature": {
                "message_utf8": SIGNED_MESSAGE.decode(),
                "message_hex": SIGNED_MESSAGE.hex(),
                "signature_hex": sig.hex(),
                "signature_is": NONDET + " (sr25519 signing is randomised: verify, don't compare)",
                "sdk_verifies": kp.verify(SIGNED_MESSAGE, sig),
                "tampered_message_hex": tampered.hex(),
                "sdk_verifies_tampered": kp.verify(tampered, sig),
            },
        }
        out.append(entry)

    # ed25519 from the dev phrase (bittensor-wallet 4 supports crypto_type 0 too).
    ed = Keypair.create_from_mnemonic(DEV_PHRASE, crypto_type=0)
    ed_bytes = bt_keyfile.serialized_keypair_to_keyfile_data(ed)
    ed_sig = bytes(ed.sign(SIGNED_MESSAGE))
    out.append(
        {
            "name": "dev_phrase_ed25519",
            "crypto_type": ed.crypto_type,
            "source": {"mnemonic": DEV_PHRASE},
            "public_key_hex": ed.public_key.hex(),
            "ss58_address": ed.ss58_address,
            "private_key_hex": json.loads(ed_bytes).get("privateKey"),
            "keyfile_json_bytes_utf8": ed_bytes.decode(),
            "keyfile_json_key_order": NONDET,
            "keyfile_json": json.loads(ed_bytes),
            "signature": {
                "message_hex": SIGNED_MESSAGE.hex(),
                "signature_hex": ed_sig.hex(),
                "signature_is": "deterministic for ed25519, but do verify rather than compare",
                "sdk_verifies": ed.verify(SIGNED_MESSAGE, ed_sig),
            },
        }
    )
    return out


def signing_semantics_section():
    kp = Keypair.create_from_mnemonic(DEV_PHRASE)
    hello = b"hello"
    # Keypair.sign(str): a str starting with "0x" is HEX-DECODED, else UTF-8 encoded.
    sig_hexstr = bytes(kp.sign("0x" + hello.hex()))
    # Keypair.verify falls back to data wrapped in <Bytes>...</Bytes> (polkadot.js signRaw).
    wrapped = b"<Bytes>" + hello + b"</Bytes>"
    sig_wrapped = bytes(kp.sign(wrapped))
    return {
        "public_key_hex": kp.public_key.hex(),
        "note": "signatures are " + NONDET,
        "str_with_0x_prefix_is_hex_decoded": {
            "signed_str": "0x" + hello.hex(),
            "signature_hex": sig_hexstr.hex(),
            "sdk_verifies_against_bytes_hex": hello.hex(),
            "sdk_verifies": kp.verify(hello, sig_hexstr),
        },
        "bytes_wrapper_fallback": {
            "signed_bytes_hex": wrapped.hex(),
            "signature_hex": sig_wrapped.hex(),
            "sdk_verify_of_unwrapped_message_hex": hello.hex(),
            "sdk_verifies_unwrapped": kp.verify(hello, sig_wrapped),
        },
    }


def ss58_section():
    cases = []
    for label, pk in [
        ("zeros", bytes(32)),
        ("ones", b"\xff" * 32),
        ("dev_phrase", Keypair.create_from_mnemonic(DEV_PHRASE).public_key),
    ]:
        a = bt_utils.ss58_encode(pk.hex(), 42)
        assert a == Keypair(public_key=pk.hex()).ss58_address
        cases.append({"label": label, "public_key_hex": pk.hex(), "ss58_format": 42, "address": a})
    good = cases[2]["address"]
    last = "1" if good[-1] != "1" else "2"
    validity = {
        good: bt_utils.is_valid_ss58_address(good),
        good[:-1] + last: bt_utils.is_valid_ss58_address(good[:-1] + last),
        good[:-1]: bt_utils.is_valid_ss58_address(good[:-1]),
        # same key, Polkadot prefix 0: the SDK accepts only format 42
        bt_utils.ss58_encode(cases[2]["public_key_hex"], 0): bt_utils.is_valid_ss58_address(
            bt_utils.ss58_encode(cases[2]["public_key_hex"], 0)
        ),
    }
    return {
        "encode": cases,
        "is_valid_ss58_address": validity,
        "decode_dev_phrase": bt_utils.ss58_decode(good),
    }


def quirks_section(tmp):
    out = {}
    # secretSeed is written as "0x" + the seed bytes taken AS TEXT when they happen to be
    # valid UTF-8 (keyfile.rs: from_utf8(seed) else hex). Such a keyfile does not reload.
    ascii_seed = b"arena-reference-seed-32-bytes!!!"
    assert len(ascii_seed) == 32
    kp = Keypair.create_from_seed("0x" + ascii_seed.hex())
    data = bt_keyfile.serialized_keypair_to_keyfile_data(kp)
    out["utf8_seed_written_as_text"] = {
        "seed_hex": ascii_seed.hex(),
        "ss58_address": kp.ss58_address,
        "keyfile_json": json.loads(data),
        "sdk_reload_error": error_of(lambda: bt_keyfile.deserialize_keypair_from_keyfile_data(data)),
    }
    # Keyfiles written by bittensor <= 6.x (json.dumps, nulls, no cryptoType) still load.
    dev = Keypair.create_from_mnemonic(DEV_PHRASE)
    dev_json = json.loads(bt_keyfile.serialized_keypair_to_keyfile_data(dev))
    legacy = {
        "accountId": dev_json["accountId"],
        "publicKey": dev_json["publicKey"],
        "privateKey": None,
        "secretPhrase": None,
        "secretSeed": None,
        "ss58Address": dev_json["ss58Address"],
    }
    legacy_bytes = json.dumps(legacy).encode()
    out["bittensor_v6_coldkeypub_layout"] = {
        "bytes_utf8": legacy_bytes.decode(),
        "note": "field order and ', '/': ' separators as bittensor 6.12.4 keyfile.py json.dumps",
        "sdk_loads_ss58": bt_keyfile.deserialize_keypair_from_keyfile_data(legacy_bytes).ss58_address,
    }
    # Priority when fields disagree: secretPhrase wins over secretSeed and privateKey.
    other = Keypair.create_from_mnemonic(FIXED_PHRASE)
    other_json = json.loads(bt_keyfile.serialized_keypair_to_keyfile_data(other))
    mixed = dict(dev_json, secretSeed=other_json["secretSeed"], privateKey=other_json["privateKey"])
    out["field_priority_phrase_over_seed"] = {
        "keyfile_json": mixed,
        "sdk_loads_ss58": bt_keyfile.deserialize_keypair_from_keyfile_data(
            json.dumps(mixed).encode()
        ).ss58_address,
    }
    mixed2 = {k: v for k, v in mixed.items() if k != "secretPhrase"}
    out["field_priority_seed_over_private_key"] = {
        "keyfile_json": {**mixed2, "privateKey": dev_json["privateKey"]},
        "sdk_loads_ss58": bt_keyfile.deserialize_keypair_from_keyfile_data(
            json.dumps({**mixed2, "privateKey": dev_json["privateKey"]}).encode()
        ).ss58_address,
    }
    only_priv = {"privateKey": dev_json["privateKey"]}
    out["private_key_only"] = {
        "keyfile_json": only_priv,
        "sdk_loads_ss58": bt_keyfile.deserialize_keypair_from_keyfile_data(
            json.dumps(only_priv).encode()
        ).ss58_address,
    }
    return out


# --------------------------------------------------------------------------------------
# 2. encrypted keyfiles and the password environment variable
# --------------------------------------------------------------------------------------


def try_pynacl_kdf(password):
    try:
        import nacl.pwhash  # not a dependency of the SDK; optional cross-check
    except ImportError:
        return None
    return nacl.pwhash.argon2i.kdf(
        32,
        password.encode(),
        NACL_SALT,
        opslimit=nacl.pwhash.argon2i.OPSLIMIT_SENSITIVE,
        memlimit=nacl.pwhash.argon2i.MEMLIMIT_SENSITIVE,
    ).hex()


def encrypted_section(tmp):
    out = {"nacl": [], "ansible_vault": None, "password_env": None}
    kp = Keypair.create_from_mnemonic(DEV_PHRASE)
    for label, pw in [("ascii", PASSWORD), ("non_ascii", PASSWORD_NON_ASCII)]:
        path = os.path.join(tmp, f"enc_{label}", "coldkey")
        kf = bt_keyfile.Keyfile(path, name="coldkey")
        kf.set_keypair(kp, encrypt=True, overwrite=True, password=pw)  # what the wallet writes
        data = open(path, "rb").read()
        plain = bytes(bt_keyfile.decrypt_keyfile_data(data, pw))
        assert bt_keyfile.keyfile_data_encryption_method(data) == "NaCl"
        rec = {
            "label": label,
            "password": pw,
            "password_utf8_hex": pw.encode().hex(),
            "file_mode": oct(stat.S_IMODE(os.stat(path).st_mode)),
            "encrypted_b64": base64.b64encode(data).decode(),
            "encrypted_is": NONDET + " (random 24-byte nonce)",
            "layout": {
                "prefix": data[:5].decode(),
                "nonce_hex": data[5:29].hex(),
                "mac_hex": data[29:45].hex(),
                "ciphertext_len": len(data) - 45,
            },
            "decrypted_plaintext_utf8": plain.decode(),
            "decrypted_key_order": NONDET + " (fixed inside this ciphertext)",
            "decrypted_ss58": bt_keyfile.deserialize_keypair_from_keyfile_data(plain).ss58_address,
            "sdk_encryption_method": bt_keyfile.keyfile_data_encryption_method(data),
            "sdk_is_encrypted": bt_keyfile.keyfile_data_is_encrypted(data),
            "wrong_password_error": error_of(
                lambda: bt_keyfile.decrypt_keyfile_data(data, pw + "x")
            ),
        }
        if label == "non_ascii":
            nfd = unicodedata.normalize("NFD", pw)
            assert nfd != pw
            rec["nfd_variant_utf8_hex"] = nfd.encode().hex()
            rec["nfd_variant_error"] = error_of(lambda: bt_keyfile.decrypt_keyfile_data(data, nfd))
        derived = try_pynacl_kdf(pw)
        if pw in CROSSCHECK_DERIVED_KEYS:
            if derived is not None:
                assert derived == CROSSCHECK_DERIVED_KEYS[pw]
            derived = CROSSCHECK_DERIVED_KEYS[pw]
        if derived is not None:
            rec["derived_key_hex"] = derived
            rec["derived_key_source"] = "argon2i13 outside the SDK (PyNaCl), see script"
        out["nacl"].append(rec)

    # Ansible Vault, written by the SDK's legacy_encrypt_keyfile_data (still decryptable).
    plain = b'{"ansible":"vault","password":"arena-test-password"}'
    vault = bytes(bt_keyfile.legacy_encrypt_keyfile_data(plain, PASSWORD))
    out["ansible_vault"] = {
        "password": PASSWORD,
        "encrypted_utf8": vault.decode(),
        "encrypted_is": NONDET + " (random 32-byte salt)",
        "plaintext_utf8": plain.decode(),
        "sdk_decrypts_to_utf8": bytes(bt_keyfile.decrypt_keyfile_data(vault, PASSWORD)).decode(),
        "sdk_encryption_method": bt_keyfile.keyfile_data_encryption_method(vault),
    }
    out["detection"] = {
        prefix: bt_keyfile.keyfile_data_encryption_method(prefix.encode() + b"rest")
        for prefix in ["$NACL", "$ANSIBLE_VAULT", "gAAAAA", "{", "$nacl"]
    }

    # Password from the environment: BT_PW_<path with '/' and '.' -> '_', upper-cased>,
    # value base64(password XOR name, the name repeated). Wallet paths are tilde-expanded.
    env = []
    # "~" is expanded from $HOME (read by the Rust extension through the C environment).
    saved_home = os.environ.get("HOME")
    os.environ["HOME"] = "/home/arena"
    for wpath in ["/home/arena/.bittensor/wallets", "~/.bittensor/wallets/"]:
        w = Wallet(name="my.wallet", hotkey="default", path=wpath)
        for which, kf in [("coldkey", w.coldkey_file), ("hotkey", w.hotkey_file)]:
            name = kf.env_var_name()
            value = kf.save_password_to_env(PASSWORD)  # sets it in the C environment
            env.append(
                {
                    "wallet_path_arg": wpath,
                    "HOME": os.environ["HOME"],
                    "key": which,
                    "keyfile_path": kf.path,
                    "env_var_name": name,
                    "env_value_for_password": value,
                    "password": PASSWORD,
                    "sdk_reads_back": bt_keyfile.get_password_from_environment(name),
                }
            )
    if saved_home is None:
        del os.environ["HOME"]
    else:
        os.environ["HOME"] = saved_home
    raw = bt_keyfile.Keyfile("~/.bittensor/wallets/default/coldkey", name="coldkey")
    env.append(
        {
            "note": "a Keyfile built directly keeps its path string (no tilde expansion) in the name",
            "keyfile_path": raw.path,
            "env_var_name": raw.env_var_name(),
        }
    )
    out["password_env"] = env
    # End to end: an encrypted keyfile unlocked via its env var, no password passed.
    path = os.path.join(tmp, "envunlock", "coldkey")
    kf = bt_keyfile.Keyfile(path, name="coldkey")
    kf.set_keypair(kp, encrypt=True, overwrite=True, password=PASSWORD)
    kf.save_password_to_env(PASSWORD)
    out["password_env_unlock_ss58"] = kf.get_keypair().ss58_address
    return out


# --------------------------------------------------------------------------------------
# 3. weight emission
# --------------------------------------------------------------------------------------


def emit_case(name, uids, weights, note=None):
    uids = np.asarray(uids)
    rec = {"name": name, "uids": array_record(uids), "weights": array_record(weights)}
    if note:
        rec["note"] = note
    try:
        u, v = weight_utils.convert_weights_and_uids_for_emit(uids, weights)
        rec["out_uids"] = [int(x) for x in u]
        rec["out_values"] = [int(x) for x in v]
    except Exception as e:  # noqa: BLE001
        rec["error"] = f"{type(e).__name__}: {e}"
    return rec


def weights_section():
    rng32 = np.random.default_rng(20240901)
    rnd32 = rng32.random(256, dtype=np.float32)
    rng64 = np.random.default_rng(7)
    rnd64 = rng64.random(12)
    f32 = np.float32
    emit = [
        emit_case("basic_f32", [0, 1, 2, 3], np.array([0.1, 0.2, 0.3, 0.4], dtype=f32)),
        emit_case(
            "ties_half_to_even_f64",
            [0, 1, 2, 3, 4, 5],
            np.array([131070.0, 1.0, 3.0, 5.0, 65535.0, 7.0]),
            "w/max*65535 = 65535, 0.5, 1.5, 2.5, 32767.5, 3.5 exactly; Python round() is "
            "round-half-to-even, so 0.5 -> 0 (uid dropped), 2.5 -> 2, 32767.5 -> 32768",
        ),
        emit_case(
            "ties_half_to_even_f32",
            [10, 11, 12, 13],
            np.array([131070.0, 1.0, 5.0, 9.0], dtype=f32),
            "0.5 -> 0 dropped, 2.5 -> 2, 4.5 -> 4",
        ),
        emit_case("zero_weight", [0, 1, 2], np.array([0.5, 0.0, 0.25], dtype=f32)),
        emit_case("all_zero", [0, 1, 2], np.array([0.0, 0.0, 0.0], dtype=f32)),
        emit_case("single", [7], np.array([0.3], dtype=f32)),
        emit_case(
            "tiny_weights_dropped",
            [0, 1, 2, 3],
            np.array([1.0, 1e-6, 7.6e-6, 7.7e-6]),
            "values rounding to 0 are dropped with their uid",
        ),
        emit_case("unsorted_uids_keep_order", [5, 2, 9, 0], np.array([0.2, 0.9, 0.4, 0.0], dtype=f32)),
        emit_case(
            "f32_widened_before_division",
            [0, 1],
            np.array([0.7, 0.3], dtype=f32),
            "weights.tolist() widens float32 to Python float; division and *65535 in f64",
        ),
        emit_case("random256_f32_seed20240901", np.arange(256), rnd32),
        emit_case("random12_f64_seed7", np.arange(12), rnd64),
        emit_case("negative_weight", [0, 1], np.array([0.5, -0.1], dtype=f32)),
        emit_case("negative_uid", [-1, 1], np.array([0.5, 0.1], dtype=f32)),
        emit_case("length_mismatch", [0, 1, 2], np.array([0.5, 0.1], dtype=f32)),
        emit_case("empty", np.array([], dtype=np.int64), np.array([], dtype=f32)),
        emit_case("nan", [0, 1], np.array([np.nan, 1.0], dtype=f32)),
        emit_case("inf", [0, 1], np.array([np.inf, 1.0], dtype=f32)),
    ]

    def pw_case(name, weights, num_neurons, min_allowed, limit, exclude_quantile=0):
        weights = np.asarray(weights)
        uids = np.arange(len(weights))
        rec = {
            "name": name,
            "uids": array_record(uids),
            "weights": array_record(weights),
            "num_neurons": num_neurons,
            "min_allowed_weights": min_allowed,
            "max_weight_limit": limit,
            "exclude_quantile": exclude_quantile,
        }
        try:
            u, w = weight_utils.process_weights(
                uids=uids,
                weights=weights,
                num_neurons=num_neurons,
                min_allowed_weights=min_allowed,
                max_weight_limit=limit,
                exclude_quantile=exclude_quantile,
            )
            rec["out_uids"] = [int(x) for x in np.asarray(u).tolist()]
            rec["out_weights"] = array_record(w)
            eu, ev = weight_utils.convert_weights_and_uids_for_emit(np.asarray(u), np.asarray(w))
            rec["then_emit_uids"] = [int(x) for x in eu]
            rec["then_emit_values"] = [int(x) for x in ev]
        except Exception as e:  # noqa: BLE001
            rec["error"] = f"{type(e).__name__}: {e}"
        return rec

    process = [
        pw_case("no_clip", np.array([0.1, 0.2, 0.3, 0.4, 0.0, 0.5, 0.6, 0.7], dtype=f32), 8, 1, 0.5),
        pw_case("clip_dominant", np.array([10.0] + [1.0] * 15, dtype=f32), 16, 1, 0.1),
        pw_case("clip_two_dominant", np.array([5.0, 4.0] + [0.5] * 18, dtype=f32), 20, 4, 0.15),
        pw_case("all_zero_uniform", np.zeros(6, dtype=f32), 6, 1, 0.5),
        pw_case("fewer_than_min_allowed", np.array([0.0, 0.9, 0.0, 0.0, 0.1], dtype=f32), 5, 3, 0.5),
        pw_case("num_neurons_below_min", np.array([0.3, 0.7], dtype=f32), 2, 3, 0.5),
        pw_case("exclude_quantile_half", np.arange(1, 11, dtype=f32), 10, 2, 0.5, 32767),
        pw_case("random256_f32", rnd32, 256, 8, 0.05),
        pw_case("limit_times_n_le_1", np.array([0.2, 0.3, 0.5], dtype=f32), 3, 1, 0.3),
    ]

    nmw = []
    for name, x, limit in [
        ("sum_only", np.array([1.0, 2.0, 3.0], dtype=f32), 0.6),
        ("clip", np.array([0.0, 0.1, 0.2, 0.9, 2.0], dtype=f32), 0.3),
        ("uniform_when_n_limit_le_1", np.array([1.0, 2.0, 3.0], dtype=f32), 0.2),
        ("zeros", np.zeros(4, dtype=f32), 0.5),
    ]:
        y = weight_utils.normalize_max_weight(x, limit=limit)
        nmw.append({"name": name, "x": array_record(x), "limit": limit, "y": array_record(y)})

    return {
        "U16_MAX": weight_utils.U16_MAX,
        "convert_weights_and_uids_for_emit": emit,
        "process_weights": process,
        "normalize_max_weight": nmw,
    }


# --------------------------------------------------------------------------------------
# 4. commit hash (commit-reveal v2)
# --------------------------------------------------------------------------------------


def compact(n):
    if n < 1 << 6:
        return bytes([n << 2])
    if n < 1 << 14:
        return ((n << 2) | 1).to_bytes(2, "little")
    if n < 1 << 30:
        return ((n << 2) | 2).to_bytes(4, "little")
    raise ValueError(n)


def vec_u16(xs):
    return compact(len(xs)) + b"".join(int(x).to_bytes(2, "little") for x in xs)


def commit_section(emit_random256):
    dev = Keypair.create_from_mnemonic(DEV_PHRASE)
    fixed = Keypair.create_from_mnemonic(FIXED_PHRASE)
    cases = [
        ("small_mech0", dev.ss58_address, 1, 0, [0, 1, 2], [65535, 32768, 1], [1, 2, 3, 4, 5, 6, 7, 8], version_as_int),
        ("sn9_mech0", fixed.ss58_address, 9, 0, [3, 17, 200], [65535, 100, 7], [65535, 0, 4660, 43981, 1, 2, 3, 4], 1),
        ("sn9_mech1", fixed.ss58_address, 9, 1, [3, 17, 200], [65535, 100, 7], [65535, 0, 4660, 43981, 1, 2, 3, 4], 1),
        ("empty_weights", dev.ss58_address, 37, 0, [], [], [9, 8, 7, 6, 5, 4, 3, 2], 0),
        ("u64_max_version_mech2", dev.ss58_address, 4095, 2, [0], [65535], [], 2**64 - 1),
        ("random256_sn37", dev.ss58_address, 37, 0, emit_random256[0], emit_random256[1], list(range(100, 116)), version_as_int),
    ]
    out = []
    for name, addr, netuid, mechid, uids, values, salt, vk in cases:
        idx = bt_utils.get_mechid_storage_index(netuid=netuid, mechid=mechid)
        h = weight_utils.generate_weight_hash(
            address=addr, netuid=idx, uids=list(uids), values=list(values), version_key=vk, salt=list(salt)
        )
        pk = Keypair(ss58_address=addr).public_key
        pre = pk + idx.to_bytes(2, "little") + vec_u16(uids) + vec_u16(values) + vec_u16(salt) + vk.to_bytes(8, "little")
        assert "0x" + hashlib.blake2b(pre, digest_size=32).hexdigest() == h, name
        out.append(
            {
                "name": name,
                "address": addr,
                "netuid": netuid,
                "mechid": mechid,
                "netuid_index_passed": idx,
                "uids": list(uids),
                "values": list(values),
                "salt": list(salt),
                "version_key": vk,
                "hash": h,
                "preimage_hex": pre.hex(),
            }
        )
    return {
        "GLOBAL_MAX_SUBNET_COUNT": bt_utils.GLOBAL_MAX_SUBNET_COUNT,
        "sdk_default_version_key": version_as_int,
        "preimage": "pubkey(32) ++ u16le(netuid_index) ++ Vec<u16> uids ++ Vec<u16> values ++ "
        "Vec<u16> salt ++ u64le(version_key); SCALE Vec = compact(len) ++ items; "
        "hash = blake2b-256 (unkeyed), hex with 0x",
        "cases": out,
    }


# --------------------------------------------------------------------------------------
# 5. taoverse secure hash (SN9 / SN37)
# --------------------------------------------------------------------------------------


def get_hash_of_two_strings(string1: str, string2: str) -> str:
    """Verbatim copy of taoverse 2.0.2 taoverse/model/utils.py."""
    string_hash = hashlib.sha256((string1 + string2).encode())
    return base64.b64encode(string_hash.digest()).decode("utf-8")


def taoverse_section():
    dev = Keypair.create_from_mnemonic(DEV_PHRASE).ss58_address
    fixed = Keypair.create_from_mnemonic(FIXED_PHRASE).ss58_address
    content_hash = base64.b64encode(hashlib.sha256(b"model.safetensors bytes").digest()).decode()
    cases = [("TestHash1", dev), (content_hash, fixed), ("", dev)]
    return {
        "source": "taoverse 2.0.2 model/utils.py get_hash_of_two_strings, reproduced with hashlib "
        "(taoverse not installed: pins bittensor==9.0.0 and imports transformers)",
        "cases": [{"hash": h, "hotkey": k, "secure_hash": get_hash_of_two_strings(h, k)} for h, k in cases],
    }


def main():
    os.umask(0o022)
    # bittensor-wallet prints "Encrypting..." through sys.stdout and bittensor's logger holds
    # its own handle on stdout: point file descriptor 1 at stderr while computing.
    sys.stdout.flush()
    saved_fd = os.dup(1)
    os.dup2(2, 1)
    doc = {}
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(sys.stderr):
        doc["meta"] = {
            "generator": "tests/reference/chain_vectors.py",
            "python": platform.python_version(),
            "packages": {
                p: version(p)
                for p in ["bittensor", "bittensor-wallet", "cyscale", "numpy", "async-substrate-interface"]
            },
            "nondeterministic": [
                "keypairs[*].keyfile_json_bytes_utf8 and wallet_files[*].bytes_utf8: key ORDER only",
                "keypairs[*].signature.signature_hex, signing_semantics.*.signature_hex",
                "encrypted.nacl[*].encrypted_b64 / layout.nonce_hex / layout.mac_hex, "
                "and the key order of decrypted_plaintext_utf8",
                "encrypted.ansible_vault.encrypted_utf8",
            ],
        }
        doc["constants"] = {
            "ss58_format": 42,
            "nacl_prefix": "$NACL",
            "nacl_salt_hex": NACL_SALT.hex(),
            "argon2i_opslimit": 8,
            "argon2i_memlimit_bytes": 536870912,
            "secretbox_nonce_len": 24,
            "secretbox_mac_len": 16,
            "ansible_prefix": "$ANSIBLE_VAULT",
            "fernet_legacy_prefix": "gAAAAA",
            "legacy_fernet_salt": "Iguesscyborgslikemyselfhaveatendencytobeparanoidaboutourorigins",
            "env_var_prefix": "BT_PW_",
            "default_wallet_path": "~/.bittensor/wallets/",
            "default_wallet_name": "default",
            "default_hotkey_name": "default",
            "wallet_layout": {
                "coldkey": "<path>/<wallet>/coldkey",
                "coldkeypub": "<path>/<wallet>/coldkeypub.txt",
                "hotkey": "<path>/<wallet>/hotkeys/<hotkey>",
                "hotkeypub": "<path>/<wallet>/hotkeys/<hotkey>pub.txt",
                "file_mode": "0o600",
                "dir_mode": "0o777 & ~umask (create_dir_all)",
            },
        }
        doc["keypairs"] = keypair_section(tmp)
        doc["signing_semantics"] = signing_semantics_section()
        doc["ss58"] = ss58_section()
        doc["keyfile_quirks"] = quirks_section(tmp)
        doc["encrypted"] = encrypted_section(tmp)
        doc["weights"] = weights_section()
        r256 = next(c for c in doc["weights"]["convert_weights_and_uids_for_emit"] if c["name"].startswith("random256"))
        doc["commit_hash_v2"] = commit_section((r256["out_uids"], r256["out_values"]))
        doc["taoverse_secure_hash"] = taoverse_section()
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(saved_fd, 1)
    os.close(saved_fd)
    # Keys sorted so reruns differ only in the fields listed under meta.nondeterministic.
    text = json.dumps(doc, indent=1, ensure_ascii=False, sort_keys=True, allow_nan=False) + "\n"
    sys.stdout.buffer.write(text.encode("utf-8"))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
