//! Dev mode's keys: generated on the first run, kept in a local file (mode 0600) so restarts
//! keep working with the same admin key.

use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};

#[derive(Debug, Clone)]
pub struct DevKeys {
    pub master_key: SecretString,
    pub encryption_key: SecretString,
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Returns the keys and whether they were just created.
pub fn load_or_create(path: &Path) -> std::io::Result<(DevKeys, bool)> {
    if let Ok(text) = std::fs::read_to_string(path) {
        let value = |name: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix('='))
                .map(|v| SecretString::from(v.trim().to_owned()))
        };
        if let (Some(master_key), Some(encryption_key)) =
            (value("MASTER_KEY"), value("ENCRYPTION_KEY"))
        {
            return Ok((
                DevKeys {
                    master_key,
                    encryption_key,
                },
                false,
            ));
        }
    }
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    let keys = DevKeys {
        master_key: format!("dev-mk-{}", random_hex(24)).into(),
        encryption_key: BASE64.encode(key).into(),
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    writeln!(
        file,
        "# saas-api dev mode keys (generated; never use in production)\nMASTER_KEY={}\nENCRYPTION_KEY={}",
        keys.master_key.expose_secret(),
        keys.encryption_key.expose_secret()
    )?;
    Ok((keys, true))
}
