//! `rxedge-hub`: command-line wiring only.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use rxedge_hub::config::Config;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "rxedge-hub",
    version,
    about = "RxEdge hub: ingest, store and pharmacy screens"
)]
struct Cli {
    /// Config file (hub.toml). Defaults apply without one; RXEDGE_HUB__* env overrides both.
    #[arg(long, short, global = true, env = "RXEDGE_HUB_CONFIG")]
    config: Option<PathBuf>,
    /// Print the default configuration and exit.
    #[arg(long)]
    print_default_config: bool,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the hub (the default).
    Run,
    /// Manage kiosks.
    Kiosk {
        #[command(subcommand)]
        cmd: KioskCmd,
    },
    /// Cold chain: logger imports.
    Coldchain {
        #[command(subcommand)]
        cmd: ColdchainCmd,
    },
    /// Catalog: CSV import.
    Catalog {
        #[command(subcommand)]
        cmd: CatalogCmd,
    },
    /// Accounts.
    User {
        #[command(subcommand)]
        cmd: UserCmd,
    },
    /// The audit trail.
    Audit {
        #[command(subcommand)]
        cmd: AuditCmd,
    },
    /// Write a consistent backup (database, hub key, images) to FILE while the hub runs.
    Backup {
        /// Output file, e.g. rxedge-2026-11-26.tar.gz.
        file: PathBuf,
    },
    /// Restore a backup made by `backup`. Stop the hub first.
    Restore {
        /// The backup file.
        file: PathBuf,
        /// Replace an existing database (it is moved aside, not deleted).
        #[arg(long)]
        force: bool,
    },
    /// Read prescription images or PDFs and print one JSON draft per file:
    /// `{"file", "text", "patient", "prescriber", "items", "ms", …}`.
    Ocr {
        /// PNG, JPEG or PDF files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Catalog CSV to match drug names against (default: the demo catalog).
        #[arg(long)]
        catalog: Option<PathBuf>,
        /// A drug_names.tsv brand → generic list (default: ocr.drug_names_file).
        #[arg(long)]
        drug_names: Option<PathBuf>,
        /// Also print the recognised words with their boxes.
        #[arg(long)]
        words: bool,
    },
    /// Run the hub with its embedded broker and a simulated kiosk, for a first look.
    Demo {
        /// Where the demo keeps its state.
        #[arg(long, default_value = ".state/demo")]
        dir: PathBuf,
        /// Web port.
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Embedded broker port.
        #[arg(long, default_value_t = 1883)]
        mqtt_port: u16,
    },
}

#[derive(Subcommand)]
enum UserCmd {
    /// Create an account. The password is read from RXEDGE_PASSWORD, or else
    /// the first line of standard input (never from the command line, which
    /// other users can see).
    Add {
        /// User name (a-z, 0-9, '.', '_', '-').
        username: String,
        /// admin, pharmacist or technician.
        #[arg(long, default_value = "admin")]
        role: String,
        /// Full name (defaults to the user name).
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Subcommand)]
enum AuditCmd {
    /// Check the hash chain from the first entry to the last; exit 1 and name
    /// the first broken entry if any row was edited, removed or reordered.
    Verify,
}

#[derive(Subcommand)]
enum KioskCmd {
    /// Register a kiosk and print its one-time enrollment code.
    Add {
        /// Kiosk id (lowercase letters, digits, - and _), e.g. front-desk.
        id: String,
        /// Display name (defaults to the id).
        #[arg(long)]
        name: Option<String>,
        /// Register this base64 public key directly instead of issuing a code.
        #[arg(long)]
        public_key: Option<String>,
        /// Replace the key of an already enrolled kiosk.
        #[arg(long)]
        reenroll: bool,
    },
    /// List kiosks.
    List,
}

#[derive(Subcommand)]
enum ColdchainCmd {
    /// Read a Berlinger Fridge-tag / Q-tag export, replay its readings through our
    /// alarm engine with the device's own alarm settings, and compare.
    Import {
        /// The exported .txt file.
        file: PathBuf,
        /// Print the full report as JSON.
        #[arg(long)]
        json: bool,
        /// Also keep the daily records as this fridge's history in the hub's store.
        #[arg(long)]
        fridge: Option<String>,
    },
}

#[derive(Subcommand)]
enum CatalogCmd {
    /// Validate a catalog CSV (format: docs/inventory.md) and import it: every
    /// row or none. Problems are printed with their line numbers.
    Import {
        /// The CSV file.
        file: PathBuf,
    },
}

use rxedge_shared::clock::system_now_ms as now_ms;

fn main() -> anyhow::Result<()> {
    // Tesseract's OpenMP threads halve throughput on a small machine; the
    // hub runs one engine per worker instead. Set before any thread starts.
    if std::env::var_os("OMP_THREAD_LIMIT").is_none() {
        std::env::set_var("OMP_THREAD_LIMIT", "1");
    }
    let cli = Cli::parse();
    if cli.print_default_config {
        print!("{}", rxedge_shared::config::print_defaults::<Config>()?);
        return Ok(());
    }
    let cfg = Config::load(cli.config.as_deref())?;
    rxedge_hub::init_tracing(&cfg.log.filter, cfg.log.json);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        match cli.cmd.unwrap_or(Cmd::Run) {
            Cmd::Run => {
                let listener = tokio::net::TcpListener::bind(cfg.http.listen)
                    .await
                    .with_context(|| format!("cannot listen on {}", cfg.http.listen))?;
                rxedge_hub::run(cfg, listener, rxedge_kiosk::shutdown_signal()).await?;
            }
            Cmd::Kiosk { cmd } => kiosk_cmd(&cfg, cmd).await?,
            Cmd::Coldchain {
                cmd: ColdchainCmd::Import { file, json, fridge },
            } => {
                let report = coldchain_import(&file, json)?;
                if let Some(f) = fridge {
                    let db = rxedge_hub::open_db(&cfg).await?;
                    let n =
                        rxedge_hub::coldchain::import::store_history(&db, &f, &report, now_ms())
                            .await?;
                    eprintln!("{n} new daily record(s) stored as the history of {f}");
                }
            }
            Cmd::User {
                cmd: UserCmd::Add { username, role, name },
            } => {
                let password = match std::env::var("RXEDGE_PASSWORD") {
                    Ok(p) => p,
                    Err(_) => {
                        let mut line = String::new();
                        std::io::stdin()
                            .read_line(&mut line)
                            .context("cannot read the password from standard input")?;
                        line.trim_end_matches(['\r', '\n']).to_owned()
                    }
                };
                let db = rxedge_hub::open_db(&cfg).await?;
                let user = rxedge_hub::auth::NewUser {
                    username: &username,
                    display_name: name.as_deref().unwrap_or(&username),
                    role: &role,
                    password: &password,
                };
                rxedge_hub::auth::create_user(&db, &user, "command line", now_ms()).await?;
                println!("user {username} ({role}) created");
            }
            Cmd::Ocr { files, catalog, drug_names, words } => {
                let failed = rxedge_hub::ocr::cli::run(&cfg, &files, catalog.as_deref(), drug_names.as_deref(), words).await?;
                if failed > 0 {
                    anyhow::bail!("{failed} of {} files could not be read", files.len());
                }
            }
            Cmd::Audit { cmd: AuditCmd::Verify } => {
                let db = rxedge_hub::open_db(&cfg).await?;
                match rxedge_hub::audit::verify(&db).await {
                    Ok(n) => println!("audit: chain intact, {n} entries"),
                    Err(e) => {
                        eprintln!("audit: {e}");
                        std::process::exit(1);
                    }
                }
            }
            Cmd::Backup { file } => {
                let m = rxedge_hub::backup::backup(&cfg, &file).await?;
                let bytes: u64 = m.files.iter().map(|f| f.bytes).sum();
                println!(
                    "backup written to {}: {} database, schema {}, {} file(s), {bytes} bytes before compression",
                    file.display(),
                    m.backend,
                    m.schema_version,
                    m.files.len()
                );
            }
            Cmd::Restore { file, force } => {
                let r = rxedge_hub::backup::restore(&cfg, &file, force).await?;
                println!(
                    "restored {} (made {} by RxEdge {}, schema {}); schema now {}",
                    file.display(),
                    rxedge_hub::web::fmt_utc(r.manifest.created_ms),
                    r.manifest.rxedge_version,
                    r.manifest.schema_version,
                    r.schema_version
                );
                for p in &r.moved_aside {
                    println!("kept aside: {}", p.display());
                }
            }
            Cmd::Catalog {
                cmd: CatalogCmd::Import { file },
            } => {
                let text = std::fs::read_to_string(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
                let db = rxedge_hub::open_db(&cfg).await?;
                match rxedge_hub::catalog::import_csv(&db, &text, now_ms()).await {
                    Ok(r) => println!("{} product(s) added, {} updated", r.added, r.updated),
                    Err(rxedge_hub::catalog::CatalogError::Invalid(errs)) => {
                        for e in &errs {
                            eprintln!("{}:{}: {}", file.display(), e.line, e.message);
                        }
                        anyhow::bail!("nothing imported: {} problem(s)", errs.len());
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Cmd::Demo {
                dir,
                port,
                mqtt_port,
            } => {
                rxedge_hub::demo::run(&dir, port, mqtt_port, rxedge_kiosk::shutdown_signal())
                    .await?
            }
        }
        Ok::<_, anyhow::Error>(())
    })
}

fn coldchain_import(
    file: &std::path::Path,
    json: bool,
) -> anyhow::Result<rxedge_hub::coldchain::import::ImportReport> {
    let text = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let text = String::from_utf8_lossy(&text);
    let export = rxedge_hub::coldchain::berlinger::parse(&text)
        .with_context(|| format!("{}", file.display()))?;
    let report = rxedge_hub::coldchain::import::replay(&export);
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(report);
    }
    let c = |v: Option<f64>| v.map_or("–".into(), |v| format!("{v:.1} °C"));
    println!(
        "{} {} — {} readings",
        report.device, report.serial, report.readings
    );
    println!(
        "min {}  max {}  MKT {} (device {})",
        c(report.min),
        c(report.max),
        c(report.mkt),
        c(report.device_mkt)
    );
    for a in &report.alarms {
        println!(
            "alarm {} {:?} {} °C / {} min: {} episode(s)",
            a.id,
            a.kind,
            a.limit_c,
            a.minutes,
            a.episodes.len()
        );
        for e in &a.episodes {
            println!(
                "  from {} alarm at {} until {}",
                e.start,
                e.alarm_at,
                e.end.as_deref().unwrap_or("(still on)")
            );
        }
    }
    for d in report.device_alarms.iter().filter(|d| !d.carried_over) {
        println!(
            "device alarm {} at {}",
            d.id,
            d.alarm_at.as_deref().unwrap_or("?")
        );
    }
    if !report.days.is_empty() {
        println!("{} daily records", report.days.len());
    }
    Ok(report)
}

async fn kiosk_cmd(cfg: &Config, cmd: KioskCmd) -> anyhow::Result<()> {
    let db = rxedge_hub::open_db(cfg).await?;
    match cmd {
        KioskCmd::Add {
            id,
            name,
            public_key,
            reenroll,
        } => {
            let kid = rxedge_shared::KioskId::new(id.clone())
                .with_context(|| format!("kiosk id {id:?}"))?;
            let name = name.unwrap_or_else(|| id.clone());
            match public_key {
                Some(pk) => {
                    let key = rxedge_shared::sign::decode_public(&pk).context("--public-key")?;
                    let enrolled = rxedge_hub::devices::get(&db, kid.as_str())
                        .await?
                        .is_some_and(|k| k.public_key.is_some());
                    if enrolled && !reenroll {
                        anyhow::bail!(
                            "kiosk {kid} is already enrolled; pass --reenroll to replace its key"
                        );
                    }
                    let store = cfg.store_id()?;
                    let store_name = rxedge_hub::auth::setting(&db, rxedge_hub::auth::STORE_NAME)
                        .await?
                        .unwrap_or_else(|| cfg.store.name.clone());
                    let initial = rxedge_hub::devices::initial_config(
                        &store,
                        &kid,
                        &store_name,
                        &cfg.kiosk_defaults,
                        now_ms(),
                    );
                    rxedge_hub::devices::set_key(&db, &kid, Some(&name), &key, &initial, now_ms())
                        .await?;
                    rxedge_hub::ensure_state_dir(&cfg.paths.state_dir)?;
                    let hub = rxedge_hub::hub_key(&cfg.paths.state_dir)?;
                    let identity = rxedge_kiosk::identity::IdentityFile {
                        store_id: store.to_string(),
                        kiosk_id: kid.to_string(),
                        broker_url: cfg.broker.public_url.clone(),
                        hub_public_key: rxedge_shared::sign::encode_public(&hub.verifying_key()),
                        hub_url: cfg.http.public_url.clone(),
                        hub_ca_pem: rxedge_hub::tls::ca_on_disk(cfg)?
                            .map(|(pem, _)| pem)
                            .unwrap_or_default(),
                    };
                    println!("kiosk {kid} registered.");
                    println!("Put this in the kiosk's state directory as identity.toml:\n");
                    println!("{}", toml::to_string(&identity)?);
                }
                None => {
                    let fp = rxedge_hub::tls::ca_on_disk(cfg)?.map(|(_, fp)| fp);
                    let code =
                        rxedge_hub::devices::add(&db, &kid, &name, reenroll, now_ms()).await?;
                    println!("kiosk {kid} added. On the kiosk, within 30 minutes, run:\n");
                    println!(
                        "  {}",
                        rxedge_hub::devices::enroll_command(
                            &cfg.http.public_url,
                            kid.as_str(),
                            fp.as_deref(),
                            &code
                        )
                    );
                }
            }
        }
        KioskCmd::List => {
            for k in rxedge_hub::devices::list(&db).await? {
                let state = if k.public_key.is_none() {
                    "awaiting enrollment"
                } else if k.online {
                    "online"
                } else {
                    "offline"
                };
                println!(
                    "{}\t{}\t{}\tconfig v{} (running {:?})",
                    k.id, k.name, state, k.config_version, k.running_version
                );
            }
        }
    }
    Ok(())
}
