//! `idp users …`: user management from the command line. Passwords come from a file
//! (`--password-file`), from standard input when it is not a terminal, or from a prompt
//! without echo; never from the command line.
//!
//! `users disable` and `users delete` sign the user out everywhere: the user's idp sessions
//! end with the local change (one transaction), then authz revokes every grant of the user
//! (`authz.v1.LoginFlow.RevokeSubject`). When authz cannot be reached the local change
//! stays committed and the command fails with one line saying that the grants were not
//! revoked; running `users disable` again retries the revocation.
//!
//! `users sign-out` (and `users set-password` with `sessions.end_on_password_change`) ends
//! the user's idp sessions and tells authz about each (`LoginFlow.SessionEnded`), which ends
//! the matching authz sessions, revokes their grants except `offline_access` and sends
//! back-channel logout tokens to the relying parties (OpenID Connect Back-Channel Logout
//! 1.0).

// admin API (issue 18, idpadmin2): `--url` drives a remote idp through its admin API.
mod remote;

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use clap::{Args, Subcommand};
use storage::{Database, OpenMode};

use crate::login_flow::LoginFlow;
use crate::users::{Caller, NewUser, Passwords, Profile, User, Users};
use crate::{IdpConfig, IdpError, MIGRATIONS};
pub use remote::Remote;

/// `idp users` subcommands.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user.
    Create {
        /// Login name (stored lower-case).
        #[arg(long)]
        username: String,
        /// Profile claims.
        #[command(flatten)]
        profile: ProfileArgs,
        /// Read the password from this file (first line).
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// List users.
    List {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Show a user (by id, username or email).
    Show {
        /// Id, username or email.
        user: String,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Set a new password.
    SetPassword {
        /// Id, username or email.
        user: String,
        /// Read the password from this file (first line).
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
    },
    /// Sign a user out everywhere: end the user's idp sessions and have authz end the
    /// matching sessions, revoke their grants (except offline_access) and send back-channel
    /// logout tokens to the applications.
    SignOut {
        /// Id, username or email.
        user: String,
    },
    /// Disable a user: no login, refresh or userinfo. Ends the user's idp sessions and
    /// has authz revoke every grant of the user; run it again to retry the revocation when
    /// authz was unreachable.
    Disable {
        /// Id, username or email.
        user: String,
    },
    /// Enable a disabled user.
    Enable {
        /// Id, username or email.
        user: String,
    },
    /// Delete a user with its idp sessions, and have authz revoke every grant of the user.
    Delete {
        /// Id, username or email.
        user: String,
    }, // account page
    /// Change profile claims (OpenID Connect Core 1.0 §5.1); only the given ones change, an
    /// empty value removes a claim. The next ID token and userinfo answer carry them.
    Update {
        /// Id, username or email.
        user: String,
        /// `name`.
        #[arg(long)]
        name: Option<String>,
        /// `given_name`.
        #[arg(long)]
        given_name: Option<String>,
        /// `family_name`.
        #[arg(long)]
        family_name: Option<String>,
        /// `locale` (BCP 47, such as en-GB).
        #[arg(long)]
        locale: Option<String>,
        /// `picture` URL (http or https).
        #[arg(long)]
        picture: Option<String>,
        /// `email`.
        #[arg(long)]
        email: Option<String>,
        /// `email_verified`: true or false.
        #[arg(long)]
        email_verified: Option<bool>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

/// Profile claims on the command line.
#[derive(Debug, Args)]
pub struct ProfileArgs {
    /// `email`.
    #[arg(long)]
    email: Option<String>,
    /// Mark the email as verified.
    #[arg(long)]
    email_verified: bool,
    /// `name`.
    #[arg(long)]
    name: Option<String>,
    /// `given_name`.
    #[arg(long)]
    given_name: Option<String>,
    /// `family_name`.
    #[arg(long)]
    family_name: Option<String>,
    /// `picture` URL.
    #[arg(long)]
    picture: Option<String>,
    /// `locale` (BCP 47).
    #[arg(long)]
    locale: Option<String>,
}

fn read_password(file: Option<&PathBuf>) -> Result<String, IdpError> {
    let line = match file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| IdpError::Invalid(format!("{}: {e}", path.display())))?
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned(),
        None if std::io::stdin().is_terminal() => rpassword::prompt_password("password: ")
            .map_err(|e| IdpError::Invalid(format!("cannot read the password: {e}")))?,
        None => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| IdpError::Invalid(format!("cannot read the password: {e}")))?;
            line.trim_end_matches(['\n', '\r']).to_owned()
        }
    };
    Ok(line)
}

/// The JSON view of a user (never the password hash).
pub fn user_json(u: &User) -> serde_json::Value {
    serde_json::json!({
        "id": u.id,
        "username": u.username,
        "email": u.profile.email,
        "email_verified": u.profile.email_verified,
        "name": u.profile.name,
        "given_name": u.profile.given_name,
        "family_name": u.profile.family_name,
        "picture": u.profile.picture,
        "locale": u.profile.locale,
        "disabled": u.disabled,
        "created_at": u.created_at,
        "updated_at": u.updated_at,
    })
}

fn show(u: &User, json: bool) {
    if json {
        println!("{}", user_json(u));
    } else {
        println!(
            "{}  {}  {}{}",
            u.id,
            u.username,
            u.profile.email.as_deref().unwrap_or("-"),
            if u.disabled { "  (disabled)" } else { "" }
        );
    }
}

/// Refuses a SQLite database file that does not exist before a `users` command runs (only
/// `serve` and `migrate` create one): prints one line on stderr naming the URL tried and how
/// to point at the right database, and returns exit code 2 for `main`; creates nothing.
pub fn require_database(config: &IdpConfig) -> Result<(), std::process::ExitCode> {
    Database::require_existing(&config.database).map_err(|e| {
        match e {
            storage::StorageError::Missing { .. } => eprintln!(
                "error: {e}; run from the directory of your deployment, pass --config, or set \
                 IDP__DATABASE__URL (only serve and migrate create it)"
            ),
            other => eprintln!("error: {other}"),
        }
        std::process::ExitCode::from(runtime::cli::EXIT_CONFIG)
    })
}

/// Has authz revoke every grant of `user` after `done` (what was already committed here),
/// and prints what authz revoked. On failure the error says, on one line, that the grants
/// are not revoked and how to retry.
async fn revoke_at_authz(
    config: &IdpConfig,
    user: &User,
    done: &str,
    retry: &str,
) -> Result<(), IdpError> {
    let incomplete = |e: IdpError| {
        let tell = |cause: String| {
            format!(
                "{}; {done}, but the user's grants at authz are NOT revoked: {retry}",
                cause.replace(['\n', '\r'], " ")
            )
        };
        match e {
            IdpError::Unavailable(m) => IdpError::Unavailable(tell(m)),
            IdpError::Upstream(m) => IdpError::Upstream(tell(m)),
            other => IdpError::Upstream(tell(other.to_string())),
        }
    };
    let authz = LoginFlow::new(&config.authz)?;
    let revoked = authz.revoke_subject(&user.id).await.map_err(incomplete)?;
    println!(
        "authz revoked {} grant(s) and ended {} session(s) of {}",
        revoked.grants_revoked, revoked.sessions_ended, user.username
    );
    Ok(())
}

/// logout: ends every idp session of `user` and tells authz about each
/// (`LoginFlow.SessionEnded`), printing what happened. On failure the error says, on one
/// line, what is not done and how to retry.
async fn sign_out(config: &IdpConfig, db: &Database, user: &User) -> Result<(), IdpError> {
    let sessions = crate::sessions::Sessions::new(
        db.clone(),
        std::sync::Arc::new(crate::clock::SystemClock),
        config.sessions,
    );
    let ended = sessions.end_all_listed(&user.id).await?;
    println!("ended {} idp session(s) of {}", ended.len(), user.username);
    audit::record(
        db,
        &audit::AuditEvent::new(audit::Actor::Operator, audit::Action::SessionsEnded)
            .target(audit::TargetKind::User, &user.id),
    )
    .await?;
    if ended.is_empty() {
        return Ok(());
    }
    let authz = LoginFlow::new(&config.authz)?;
    let (mut sessions_ended, mut grants, mut queued) = (0, 0, 0);
    for id in &ended {
        let r = authz.session_ended(id).await.map_err(|e| {
            IdpError::Unavailable(format!(
                "{}; the idp sessions of {} ended, but authz was NOT told: its sessions and \
                 grants stay until they expire",
                e.to_string().replace(['\n', '\r'], " "),
                user.username
            ))
        })?;
        sessions_ended += r.sessions_ended;
        grants += r.grants_revoked;
        queued += r.logout_tokens_queued;
    }
    println!(
        "authz ended {sessions_ended} session(s), revoked {grants} grant(s) and queued \
         {queued} back-channel logout token(s) for {}",
        user.username
    );
    Ok(())
}

/// Runs one `idp users` command against the idp at `remote.url` through its admin API.
pub async fn remote_users(remote: &Remote, command: UsersCommand) -> Result<(), IdpError> {
    remote::users(remote, command).await
}

/// Runs one `idp users` command against the configured database, which must exist.
pub async fn users(config: &IdpConfig, command: UsersCommand) -> Result<(), IdpError> {
    // Only serve and migrate create a database; this refuses a missing one.
    let db = Database::open(&config.database, &MIGRATIONS, OpenMode::MustExist).await?;
    db.migrate().await?;
    let users = Users::new(db.clone(), Passwords::new(&config.passwords)?);
    match command {
        UsersCommand::Create {
            username,
            profile,
            password_file,
            json,
        } => {
            let password = read_password(password_file.as_ref())?;
            let user = users
                .create_by(
                    &Caller::operator(),
                    NewUser {
                        username,
                        profile: Profile {
                            email: profile.email,
                            email_verified: profile.email_verified,
                            name: profile.name,
                            given_name: profile.given_name,
                            family_name: profile.family_name,
                            picture: profile.picture,
                            locale: profile.locale,
                        },
                    },
                    password,
                )
                .await?;
            show(&user, json);
        }
        UsersCommand::List { json } => {
            let all = users.list().await?;
            if json {
                println!(
                    "{}",
                    serde_json::Value::Array(all.iter().map(user_json).collect())
                );
            } else {
                all.iter().for_each(|u| show(u, false));
            }
        }
        UsersCommand::Show { user, json } => show(&users.get(&user).await?, json),
        UsersCommand::SetPassword {
            user,
            password_file,
        } => {
            let password = read_password(password_file.as_ref())?;
            let u = users
                .set_password_by(&Caller::operator(), &user, password)
                .await?;
            println!("password set for {}", u.username);
            if config.sessions.end_on_password_change {
                sign_out(config, &db, &u).await?;
            }
        }
        UsersCommand::SignOut { user } => {
            let u = users.get(&user).await?;
            sign_out(config, &db, &u).await?;
        }
        UsersCommand::Disable { user } => {
            let u = users
                .set_disabled_by(&Caller::operator(), &user, true)
                .await?;
            show(&u, false);
            revoke_at_authz(
                config,
                &u,
                &format!("user {} is disabled and its idp sessions ended", u.username),
                &format!(
                    "run `idp users disable {}` again once authz is reachable",
                    u.username
                ),
            )
            .await?;
        }
        UsersCommand::Enable { user } => show(
            &users
                .set_disabled_by(&Caller::operator(), &user, false)
                .await?,
            false,
        ),
        // account page
        UsersCommand::Update {
            user,
            name,
            given_name,
            family_name,
            locale,
            picture,
            email,
            email_verified,
            json,
        } => {
            let text = |key: &str, v: Option<String>| {
                v.map(|v| crate::users::claim_text(key, &v)).transpose()
            };
            let picture = picture
                .map(|p| {
                    let p = p.trim().to_owned();
                    if p.is_empty() {
                        return Ok(None);
                    }
                    match url::Url::parse(&p) {
                        Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(Some(p)),
                        _ => Err(IdpError::Invalid(
                            "picture must be an http or https URL".into(),
                        )),
                    }
                })
                .transpose()?;
            let edit = crate::users::ProfileEdit {
                name: text("name", name)?,
                given_name: text("given_name", given_name)?,
                family_name: text("family_name", family_name)?,
                locale: locale.map(|l| crate::users::locale(&l)).transpose()?,
                picture,
                // A new address is unverified unless said otherwise.
                email_verified: email_verified.or(email.as_ref().map(|_| false)),
                email: email.map(|e| Some(e).filter(|e| !e.trim().is_empty())),
            };
            let id = users.get(&user).await?.id;
            show(&users.update_profile(&id, edit).await?, json);
        }
        UsersCommand::Delete { user } => {
            let u = users.delete_by(&Caller::operator(), &user).await?;
            println!("deleted {user}");
            revoke_at_authz(
                config,
                &u,
                &format!("user {} is deleted", u.username),
                "its refresh tokens fail anyway (the user is gone), its access tokens stay valid until they expire",
            )
            .await?;
        }
    }
    Ok(())
}
