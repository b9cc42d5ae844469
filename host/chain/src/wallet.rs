//! btcli wallets: `WALLETS/NAME/coldkey`, `coldkeypub.txt`, `hotkeys/HOTKEY`, keyfiles in the
//! bittensor SDK's JSON, plain or NaCl-encrypted (`$NACL` + secretbox under an Argon2i key), and
//! sr25519 signing with schnorrkel (the `substrate` signing context, as the chain verifies it).
//!
//! Secrets never reach a log or an error message: errors name files and formats only, and
//! secret bytes are zeroized when dropped.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail, ensure};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use super::ss58;

/// The signing context of Substrate's sr25519 signatures.
const SIGNING_CONTEXT: &[u8] = b"substrate";

/// bittensor-wallet's fixed Argon2i salt for NaCl keyfiles.
const NACL_SALT: [u8; 16] = *b"\x13q\x83\xdf\xf1Z\t\xbc\x9c\x90\xb5Q\x879\xe9\xb1";
/// libsodium's `crypto_pwhash_argon2i` OPSLIMIT_SENSITIVE and MEMLIMIT_SENSITIVE (512 MiB).
const ARGON2I_OPS: u32 = 8;
const ARGON2I_MEM_KIB: u32 = 512 * 1024;
const NACL_PREFIX: &[u8] = b"$NACL";

/// An sr25519 key pair.
pub struct Keypair {
    inner: schnorrkel::Keypair,
}

impl std::fmt::Debug for Keypair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keypair").field("ss58", &self.ss58()).finish_non_exhaustive()
    }
}

impl Keypair {
    /// From a 32-byte mini secret (a keyfile's `secretSeed`), expanded as Substrate does.
    pub fn from_seed(seed: &[u8; 32]) -> Result<Self> {
        let mini =
            schnorrkel::MiniSecretKey::from_bytes(seed).map_err(|_| anyhow!("invalid sr25519 seed"))?;
        Ok(Self { inner: mini.expand_to_keypair(schnorrkel::ExpansionMode::Ed25519) })
    }

    /// From a 64-byte secret key (a keyfile's `privateKey`: scalar then nonce).
    pub fn from_secret(secret: &[u8]) -> Result<Self> {
        let sk = schnorrkel::SecretKey::from_bytes(secret)
            .map_err(|_| anyhow!("invalid sr25519 secret key ({} bytes)", secret.len()))?;
        Ok(Self { inner: sk.to_keypair() })
    }

    /// From a BIP-39 phrase with an optional password, as Substrate derives it: the phrase's
    /// entropy through PBKDF2-HMAC-SHA512 (salt `"mnemonic" + password`, 2048 rounds), the first
    /// 32 bytes as the mini secret.
    pub fn from_phrase(phrase: &str, password: &str) -> Result<Self> {
        let m = bip39::Mnemonic::parse_normalized(phrase)
            .map_err(|e| anyhow!("not a valid BIP-39 phrase: {e}"))?;
        let entropy = Zeroizing::new(m.to_entropy());
        let salt = Zeroizing::new(format!("mnemonic{password}"));
        let mut seed = Zeroizing::new([0u8; 64]);
        pbkdf2::pbkdf2_hmac::<sha2::Sha512>(&entropy, salt.as_bytes(), 2048, &mut seed[..]);
        let mini: [u8; 32] = seed[..32].try_into().expect("32 bytes");
        Self::from_seed(&mini)
    }

    pub fn public(&self) -> [u8; 32] {
        self.inner.public.to_bytes()
    }

    pub fn ss58(&self) -> String {
        ss58::encode(&self.public())
    }

    /// An sr25519 signature (64 bytes; randomized, so it differs on every call).
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.inner.sign(schnorrkel::signing_context(SIGNING_CONTEXT).bytes(message)).to_bytes()
    }
}

/// Checks an sr25519 signature by a public key.
pub fn verify(public: &[u8; 32], message: &[u8], signature: &[u8]) -> bool {
    let (Ok(pk), Ok(sig)) =
        (schnorrkel::PublicKey::from_bytes(public), schnorrkel::Signature::from_bytes(signature))
    else {
        return false;
    };
    pk.verify(schnorrkel::signing_context(SIGNING_CONTEXT).bytes(message), &sig).is_ok()
}

/// The keyfile JSON the bittensor SDK writes.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyfileData {
    pub account_id: Option<String>,
    pub public_key: Option<String>,
    pub private_key: Option<String>,
    pub secret_phrase: Option<String>,
    pub secret_seed: Option<String>,
    pub ss58_address: Option<String>,
}

impl Drop for KeyfileData {
    fn drop(&mut self) {
        self.private_key.zeroize();
        self.secret_phrase.zeroize();
        self.secret_seed.zeroize();
    }
}

fn hex_bytes(field: &str, s: &str) -> Result<Zeroizing<Vec<u8>>> {
    hex::decode(s.trim_start_matches("0x"))
        .map(Zeroizing::new)
        .map_err(|_| anyhow!("the keyfile's {field} is not hex"))
}

impl KeyfileData {
    /// The key pair, by the SDK's priority: `secretPhrase`, else `secretSeed`, else
    /// `privateKey`. The SDK does not compare it with `publicKey`; a mismatch is logged here
    /// and the secret wins, as in the SDK.
    pub fn keypair(&self) -> Result<Keypair> {
        let pair = if let Some(phrase) = &self.secret_phrase {
            Keypair::from_phrase(phrase, "")?
        } else if let Some(seed) = &self.secret_seed {
            let bytes = hex_bytes("secretSeed", seed)?;
            let seed: [u8; 32] = bytes
                .as_slice()
                .try_into()
                .map_err(|_| anyhow!("the keyfile's secretSeed is not 32 bytes"))?;
            Keypair::from_seed(&seed)?
        } else if let Some(sk) = &self.private_key {
            let bytes = hex_bytes("privateKey", sk)?;
            match <[u8; 32]>::try_from(bytes.as_slice()) {
                // A 32-byte private key is a mini secret, as the SDK reads it.
                Ok(seed) => Keypair::from_seed(&seed)?,
                Err(_) => Keypair::from_secret(&bytes)?,
            }
        } else {
            bail!(
                "the keyfile holds no secret (no secretPhrase, secretSeed or privateKey): it is a public key file"
            );
        };
        if let Some(pk) = &self.public_key
            && hex_bytes("publicKey", pk)?.as_slice() != pair.public()
        {
            tracing::warn!(
                "the keyfile's publicKey does not match its secret; using the secret's key {}",
                pair.ss58()
            );
        }
        Ok(pair)
    }

    /// The public key, from `publicKey` or `ss58Address`.
    pub fn public(&self) -> Result<[u8; 32]> {
        if let Some(pk) = &self.public_key {
            return hex_bytes("publicKey", pk)?
                .as_slice()
                .try_into()
                .map_err(|_| anyhow!("the keyfile's publicKey is not 32 bytes"));
        }
        match &self.ss58_address {
            Some(a) => ss58::decode(a),
            None => bail!("the keyfile names no public key"),
        }
    }
}

/// Whether keyfile bytes are NaCl-encrypted (`$NACL`), encrypted in an older format, or plain.
pub fn is_encrypted(data: &[u8]) -> bool {
    data.starts_with(NACL_PREFIX) || data.starts_with(b"$ANSIBLE_VAULT") || data.starts_with(b"gAAAAA")
}

fn nacl_key(password: &str) -> Result<Zeroizing<[u8; 32]>> {
    let params = argon2::Params::new(ARGON2I_MEM_KIB, ARGON2I_OPS, 1, Some(32))
        .map_err(|e| anyhow!("argon2 parameters: {e}"))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2i, argon2::Version::V0x13, params);
    let mut key = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(password.as_bytes(), &NACL_SALT, &mut key[..])
        .map_err(|e| anyhow!("argon2: {e}"))?;
    Ok(key)
}

/// Decrypts keyfile bytes. Only the NaCl format of current wallets is read; the legacy Ansible
/// Vault and Fernet formats are named so the user can migrate them with btcli.
pub fn decrypt(data: &[u8], password: &str) -> Result<Zeroizing<Vec<u8>>> {
    use crypto_secretbox::aead::{Aead, KeyInit};
    if data.starts_with(b"$ANSIBLE_VAULT") || data.starts_with(b"gAAAAA") {
        bail!(
            "the keyfile uses a legacy encryption (Ansible Vault or Fernet); re-encrypt it with a current btcli"
        );
    }
    let body = data.strip_prefix(NACL_PREFIX).context("the keyfile is not NaCl-encrypted")?;
    ensure!(body.len() > 24 + 16, "the encrypted keyfile is truncated");
    let (nonce, ciphertext) = body.split_at(24);
    let key = nacl_key(password)?;
    let cipher = crypto_secretbox::XSalsa20Poly1305::new(key.as_slice().into());
    cipher
        .decrypt(nonce.into(), ciphertext)
        .map(Zeroizing::new)
        .map_err(|_| anyhow!("wrong password for the keyfile (or the file is damaged)"))
}

/// Encrypts keyfile bytes as the SDK does: `$NACL`, a random 24-byte nonce, the secretbox.
pub fn encrypt(plain: &[u8], password: &str) -> Result<Vec<u8>> {
    use crypto_secretbox::aead::{Aead, KeyInit};
    let key = nacl_key(password)?;
    let mut nonce = [0u8; 24];
    getrandom::getrandom(&mut nonce).map_err(|e| anyhow!("no randomness for the nonce: {e}"))?;
    let cipher = crypto_secretbox::XSalsa20Poly1305::new(key.as_slice().into());
    let sealed = cipher.encrypt((&nonce).into(), plain).map_err(|_| anyhow!("encryption failed"))?;
    let mut out = NACL_PREFIX.to_vec();
    out.extend_from_slice(&nonce);
    out.extend(sealed);
    Ok(out)
}

/// Where a password comes from when a keyfile is encrypted.
pub enum Password<'a> {
    /// The SDK's variable for this keyfile (see [`env_var_name`]), else a prompt.
    EnvOrPrompt,
    Given(&'a str),
}

/// bittensor-wallet's password variable for a keyfile: `BT_PW_` and the path with `/` and `.`
/// replaced by `_`, upper-cased (the path as the wallet builds it, `~` expanded).
pub fn env_var_name(path: &Path) -> String {
    format!("BT_PW_{}", path.to_string_lossy().replace(['/', '.'], "_").to_uppercase())
}

/// The SDK stores the password in that variable as base64 of the password XOR the variable's
/// name (repeated): this is its inverse.
pub fn decode_env_password(name: &str, value: &str) -> Result<Zeroizing<String>> {
    use base64::Engine;
    let mut bytes = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(value.trim())
            .map_err(|_| anyhow!("{name} is not base64 (set it with btcli, or unset it to be prompted)"))?,
    );
    for (b, k) in bytes.iter_mut().zip(name.as_bytes().iter().cycle()) {
        *b ^= k;
    }
    Ok(Zeroizing::new(
        String::from_utf8(bytes.to_vec())
            .map_err(|_| anyhow!("{name} does not decode to a UTF-8 password"))?,
    ))
}

/// The inverse of [`decode_env_password`], for scripts that export the variable.
pub fn encode_env_password(name: &str, password: &str) -> String {
    use base64::Engine;
    let x: Vec<u8> = password.bytes().zip(name.as_bytes().iter().cycle()).map(|(b, k)| b ^ k).collect();
    base64::engine::general_purpose::STANDARD.encode(x)
}

/// Reads a keyfile (decrypting it if needed) into its data.
pub fn read_keyfile(path: &Path, password: Password) -> Result<KeyfileData> {
    let raw = Zeroizing::new(super::read_file(path, "the keyfile", 1 << 20)?);
    if !is_encrypted(&raw) && raw.windows(10).any(|w| w == b"privateKey") && readable_by_others(path) {
        tracing::warn!(
            "{} holds an unencrypted secret key and other users can read it: chmod 600 it",
            path.display()
        );
    }
    let plain = if is_encrypted(&raw) {
        let pw = match password {
            Password::Given(p) => Zeroizing::new(p.to_string()),
            Password::EnvOrPrompt => {
                let var = env_var_name(path);
                match std::env::var(&var) {
                    Ok(v) => decode_env_password(&var, &v)?,
                    Err(_) => Zeroizing::new(
                        rpassword::prompt_password(format!(
                            "password for {} (or set {var}): ",
                            path.display()
                        ))
                        .with_context(|| {
                            format!("{} is encrypted and no password was given", path.display())
                        })?,
                    ),
                }
            }
        };
        decrypt(&raw, &pw).with_context(|| format!("decrypting {}", path.display()))?
    } else {
        Zeroizing::new(raw.to_vec())
    };
    serde_json::from_slice(&plain).map_err(|_| {
        anyhow!("{} is not a bittensor keyfile (JSON with publicKey, secretSeed, …)", path.display())
    })
}

/// The JSON the SDK writes for an sr25519 key pair (absent fields left out, `cryptoType` 1).
pub fn keyfile_json(pair: &Keypair, seed: Option<&[u8; 32]>, phrase: Option<&str>) -> String {
    let public = format!("0x{}", hex::encode(pair.public()));
    let private = Zeroizing::new(format!("0x{}", hex::encode(pair.inner.secret.to_bytes())));
    let mut data = serde_json::json!({
        "accountId": public,
        "publicKey": public,
        "privateKey": *private,
        "ss58Address": pair.ss58(),
        "cryptoType": 1,
    });
    if let Some(p) = phrase {
        data["secretPhrase"] = p.into();
    }
    if let Some(s) = seed {
        data["secretSeed"] = format!("0x{}", hex::encode(s)).into();
    }
    data.to_string()
}

/// A btcli wallet directory: `ROOT/NAME`.
#[derive(Debug, Clone)]
pub struct Wallet {
    pub root: PathBuf,
    pub name: String,
    pub hotkey: String,
}

impl Wallet {
    /// `~/.bittensor/wallets` unless `BT_WALLET_PATH` or an explicit root says otherwise (the
    /// SDK's defaults).
    pub fn default_root() -> PathBuf {
        if let Ok(p) = std::env::var("BT_WALLET_PATH") {
            return PathBuf::from(p);
        }
        let home = std::env::var("HOME").unwrap_or_else(|_| ".".into());
        PathBuf::from(home).join(".bittensor/wallets")
    }

    pub fn new(root: Option<PathBuf>, name: &str, hotkey: &str) -> Self {
        Self { root: root.unwrap_or_else(Self::default_root), name: name.into(), hotkey: hotkey.into() }
    }

    pub fn dir(&self) -> PathBuf {
        self.root.join(&self.name)
    }

    pub fn hotkey_path(&self) -> PathBuf {
        self.dir().join("hotkeys").join(&self.hotkey)
    }

    pub fn coldkeypub_path(&self) -> PathBuf {
        self.dir().join("coldkeypub.txt")
    }

    /// The wallet and hotkey names are each one plain path component: no separator, not `.` or
    /// `..`, not empty, no NUL. Anything else would read or write a key outside the wallet.
    pub fn check_names(&self) -> Result<()> {
        for (what, n) in [("wallet", &self.name), ("hotkey", &self.hotkey)] {
            let plain = !n.is_empty()
                && n != "."
                && n != ".."
                && !n.contains(['/', '\\', '\0'])
                && Path::new(n).components().count() == 1;
            ensure!(plain, "the {what} name {n:?} must be a single file name (no `/`, not `.` or `..`)");
        }
        Ok(())
    }

    /// The hotkey pair (hotkeys are usually unencrypted; if not, the password comes from the
    /// SDK's `BT_PW_…` variable for the file, or a prompt).
    pub fn hotkey(&self) -> Result<Keypair> {
        self.check_names()?;
        read_keyfile(&self.hotkey_path(), Password::EnvOrPrompt)?
            .keypair()
            .with_context(|| format!("hotkey {}", self.hotkey_path().display()))
    }

    /// The coldkey's address from `coldkeypub.txt` (never the encrypted coldkey).
    pub fn coldkey_ss58(&self) -> Result<String> {
        self.check_names()?;
        let data = read_keyfile(&self.coldkeypub_path(), Password::Given(""))?;
        Ok(ss58::encode(&data.public()?))
    }

    /// Writes a hotkey (plain, as btcli does for hotkeys) and its `HOTKEYpub.txt`. Each file
    /// appears whole or not at all, an existing key is never overwritten, and a failure leaves
    /// neither file behind.
    pub fn create_hotkey(&self, pair: &Keypair, seed: Option<&[u8; 32]>, phrase: Option<&str>) -> Result<()> {
        self.check_names()?;
        let path = self.hotkey_path();
        let public = self.dir().join("hotkeys").join(format!("{}pub.txt", self.hotkey));
        for p in [&path, &public] {
            ensure!(!p.exists(), "{} exists; not overwriting a key", p.display());
        }
        std::fs::create_dir_all(path.parent().expect("hotkeys dir"))?;
        write_private(&path, keyfile_json(pair, seed, phrase).as_bytes())?;
        if let Err(e) = write_private(&public, public_json(pair).as_bytes()) {
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        Ok(())
    }
}

/// The public-key-only JSON of `coldkeypub.txt` / `HOTKEYpub.txt`.
pub fn public_json(pair: &Keypair) -> String {
    let public = format!("0x{}", hex::encode(pair.public()));
    serde_json::json!({"accountId": public, "publicKey": public, "ss58Address": pair.ss58(), "cryptoType": 1})
        .to_string()
}

/// Writes a new file readable by its owner only, atomically: a temporary file beside it, synced,
/// then linked to its name (which fails if the name exists: nothing is overwritten). On any
/// failure nothing is left behind.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let write = || -> Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::hard_link(&tmp, path).with_context(|| format!("creating {}", path.display()))?;
        Ok(())
    };
    let out = write();
    let _ = std::fs::remove_file(&tmp);
    out
}

/// Whether a key file's mode lets its group or others read it (ssh's "unprotected private key").
fn readable_by_others(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).map(|m| m.permissions().mode() & 0o077 != 0).unwrap_or(false)
}
