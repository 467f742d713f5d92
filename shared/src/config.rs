//! Layered configuration: defaults, then a TOML file, then environment
//! overrides. Pure: the caller reads the file and the environment and passes
//! them in, so loading can never write anything.
//!
//! Environment overrides use `PREFIX__SECTION__KEY=value`, e.g.
//! `RXEDGE_HUB__HTTP__LISTEN=0.0.0.0:8080`. The value is read as a TOML value
//! when it parses as one (`8080`, `true`, `["en","de"]`) and as a string otherwise.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// A configuration problem, naming where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The file does not parse or does not fit the schema.
    #[error("{path}:{line}:{column}: {message}")]
    File {
        /// File path as given.
        path: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong (names the key).
        message: String,
    },
    /// An environment override does not fit the schema.
    #[error("environment variable {var}: {message}")]
    Env {
        /// Variable name.
        var: String,
        /// What is wrong.
        message: String,
    },
    /// A value is individually valid but the whole does not make sense.
    #[error("{0}")]
    Invalid(String),
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Load `T` from its defaults, an optional `(path, text)` TOML file, and the
/// environment variables starting with `prefix` + `__`.
///
/// `T` should carry `#[serde(default, deny_unknown_fields)]` on every struct,
/// so a missing key takes its default and a misspelt key is an error.
pub fn load<T>(
    file: Option<(&str, &str)>,
    env: &[(String, String)],
    prefix: &str,
) -> Result<T, ConfigError>
where
    T: Serialize + DeserializeOwned + Default,
{
    let base: T = match file {
        None => T::default(),
        Some((path, text)) => toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map_or((0, 0), |s| line_col(text, s.start));
            ConfigError::File {
                path: path.to_owned(),
                line,
                column,
                message: e.message().trim().to_owned(),
            }
        })?,
    };
    let wanted = format!("{prefix}__");
    let overrides: Vec<&(String, String)> =
        env.iter().filter(|(k, _)| k.starts_with(&wanted)).collect();
    if overrides.is_empty() {
        return Ok(base);
    }
    let mut value =
        toml::Value::try_from(&base).map_err(|e| ConfigError::Invalid(e.to_string()))?;
    for (var, raw) in overrides {
        let path: Vec<String> = var[wanted.len()..]
            .split("__")
            .map(str::to_ascii_lowercase)
            .collect();
        set_path(&mut value, &path, parse_value(raw)).map_err(|message| ConfigError::Env {
            var: var.clone(),
            message,
        })?;
        // Check each override on its own so the error names the right variable.
        T::deserialize(value.clone()).map_err(|e| ConfigError::Env {
            var: var.clone(),
            message: e.to_string(),
        })?;
    }
    T::deserialize(value).map_err(|e| ConfigError::Invalid(e.to_string()))
}

fn parse_value(raw: &str) -> toml::Value {
    match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.to_owned())),
        Err(_) => toml::Value::String(raw.to_owned()),
    }
}

fn set_path(root: &mut toml::Value, path: &[String], v: toml::Value) -> Result<(), String> {
    let Some((last, parents)) = path.split_last() else {
        return Err("empty key".into());
    };
    let mut cur = root;
    for p in parents {
        let table = cur
            .as_table_mut()
            .ok_or_else(|| format!("{p} is not a section"))?;
        cur = table
            .entry(p.clone())
            .or_insert_with(|| toml::Value::Table(Default::default()));
    }
    let table = cur
        .as_table_mut()
        .ok_or_else(|| format!("{last}: parent is not a section"))?;
    table.insert(last.clone(), v);
    Ok(())
}

/// Render `T`'s defaults as TOML (for `--print-default-config`).
pub fn print_defaults<T: Serialize + Default>() -> Result<String, ConfigError> {
    toml::to_string_pretty(&T::default()).map_err(|e| ConfigError::Invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Cfg {
        name: String,
        http: Http,
    }
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Http {
        listen: String,
        port: u16,
    }
    impl Default for Http {
        fn default() -> Self {
            Self {
                listen: "127.0.0.1".into(),
                port: 8080,
            }
        }
    }

    fn env(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn layers_in_order() -> Result<(), ConfigError> {
        let c: Cfg = load(
            Some(("x.toml", "name = \"a\"\n[http]\nport = 9\n")),
            &env(&[("APP__HTTP__LISTEN", "0.0.0.0")]),
            "APP",
        )?;
        assert_eq!(
            c,
            Cfg {
                name: "a".into(),
                http: Http {
                    listen: "0.0.0.0".into(),
                    port: 9
                }
            }
        );
        let d: Cfg = load(None, &[], "APP")?;
        assert_eq!(d, Cfg::default());
        Ok(())
    }

    #[test]
    fn bad_file_names_path_line_and_key() {
        let e = load::<Cfg>(
            Some(("/etc/x.toml", "name = \"a\"\n\n[http]\nprot = 9\n")),
            &[],
            "APP",
        );
        match e {
            Err(ConfigError::File {
                path,
                line,
                message,
                ..
            }) => {
                assert_eq!(path, "/etc/x.toml");
                assert_eq!(line, 4);
                assert!(message.contains("prot"), "{message}");
            }
            other => panic!("unexpected {other:?}"),
        }
        let e = load::<Cfg>(Some(("x.toml", "[http]\nport = \"high\"\n")), &[], "APP");
        assert!(matches!(e, Err(ConfigError::File { line: 2, .. })), "{e:?}");
    }

    #[test]
    fn bad_env_names_variable() {
        let e = load::<Cfg>(None, &env(&[("APP__HTTP__PORT", "lots")]), "APP");
        assert!(
            matches!(&e, Err(ConfigError::Env { var, .. }) if var == "APP__HTTP__PORT"),
            "{e:?}"
        );
        let e = load::<Cfg>(None, &env(&[("APP__NOPE", "1")]), "APP");
        assert!(
            matches!(&e, Err(ConfigError::Env { var, .. }) if var == "APP__NOPE"),
            "{e:?}"
        );
    }

    #[test]
    fn defaults_print_and_reparse() -> Result<(), ConfigError> {
        let text = print_defaults::<Cfg>()?;
        let c: Cfg = load(Some(("d.toml", &text)), &[], "APP")?;
        assert_eq!(c, Cfg::default());
        Ok(())
    }
}
