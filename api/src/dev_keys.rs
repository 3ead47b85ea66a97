//! Dev mode's keys: generated on the first run, kept in a local file (mode 0600) so restarts
//! keep working with the same admin key. The file is never followed through a symlink, never
//! accepted readable by others, and never silently replaced: a new encryption key would make
//! every stored virtual key undecryptable.

use std::io::{Read, Write};
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

/// Why the keys file was refused; each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum DevKeysError {
    #[error(
        "{0} is a symbolic link; dev mode keeps its keys only in a regular file (remove the link)"
    )]
    Symlink(String),
    #[error("{path} can be read by other users (mode {mode:o}); run `chmod 600 {path}`")]
    OpenToOthers { path: String, mode: u32 },
    #[error(
        "{path} exists but holds no MASTER_KEY and ENCRYPTION_KEY lines; restore it (a new key would make every stored virtual key unreadable) or delete it to start over"
    )]
    Incomplete { path: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Returns the keys and whether they were just created.
pub fn load_or_create(path: &Path) -> Result<(DevKeys, bool), DevKeysError> {
    if let Some(keys) = load(path)? {
        return Ok((keys, false));
    }
    create(path).map(|keys| (keys, true))
}

/// The keys of an existing file; `None` when there is none (never creates one: a reader such
/// as `verify --chain` must not make up a key).
pub fn load(path: &Path) -> Result<Option<DevKeys>, DevKeysError> {
    let shown = path.display().to_string();
    let io = |source| DevKeysError::Io {
        path: shown.clone(),
        source,
    };
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(DevKeysError::Symlink(shown)),
        Ok(meta) => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = meta.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    return Err(DevKeysError::OpenToOthers { path: shown, mode });
                }
            }
            let _ = meta;
            let mut text = String::new();
            open_no_follow(path, false)
                .and_then(|mut file| file.read_to_string(&mut text))
                .map_err(io)?;
            read_keys(&text)
                .map(Some)
                .ok_or(DevKeysError::Incomplete { path: shown })
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(io(error)),
    }
}

fn create(path: &Path) -> Result<DevKeys, DevKeysError> {
    let io = |source| DevKeysError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    let keys = DevKeys {
        master_key: format!("dev-mk-{}", random_hex(24)).into(),
        encryption_key: BASE64.encode(key).into(),
    };
    let mut file = open_no_follow(path, true).map_err(io)?;
    writeln!(
        file,
        "# saas-api dev mode keys (generated; never use in production)\nMASTER_KEY={}\nENCRYPTION_KEY={}",
        keys.master_key.expose_secret(),
        keys.encryption_key.expose_secret()
    )
    .map_err(io)?;
    Ok(keys)
}

fn read_keys(text: &str) -> Option<DevKeys> {
    let value = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix('='))
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .map(|v| SecretString::from(v.to_owned()))
    };
    Some(DevKeys {
        master_key: value("MASTER_KEY")?,
        encryption_key: value("ENCRYPTION_KEY")?,
    })
}

/// Opens without following a symlink put there between the check and the open; a new file
/// is created 0600 and only if none exists.
fn open_no_follow(path: &Path, create: bool) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    if create {
        options.write(true).create_new(true);
    } else {
        options.read(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    options.open(path)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn scratch() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("saas-dev-keys-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn the_first_run_creates_a_private_file_and_the_next_reads_it() {
        let path = scratch().join("keys.env");
        let (first, created) = load_or_create(&path).unwrap();
        assert!(created);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (second, created) = load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(
            first.encryption_key.expose_secret(),
            second.encryption_key.expose_secret()
        );
    }

    #[test]
    fn a_symlink_is_refused_and_its_target_untouched() {
        let dir = scratch();
        let target = dir.join("elsewhere");
        std::fs::write(&target, "precious").unwrap();
        let link = dir.join("keys.env");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(matches!(
            load_or_create(&link),
            Err(DevKeysError::Symlink(_))
        ));
        // A dangling link is refused too, and nothing is created where it points.
        std::fs::remove_file(&target).unwrap();
        assert!(matches!(
            load_or_create(&link),
            Err(DevKeysError::Symlink(_))
        ));
        assert!(!target.exists());
    }

    #[test]
    fn a_file_others_can_read_is_refused() {
        let path = scratch().join("keys.env");
        load_or_create(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = load_or_create(&path).unwrap_err();
        assert!(error.to_string().contains("chmod 600"), "{error}");
    }

    #[test]
    fn an_unreadable_or_damaged_file_is_refused_not_replaced() {
        let path = scratch().join("keys.env");
        std::fs::write(&path, "MASTER_KEY=only-half\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            load_or_create(&path),
            Err(DevKeysError::Incomplete { .. })
        ));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "MASTER_KEY=only-half\n"
        );
    }
}
