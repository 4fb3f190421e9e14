//! deployments/compose/compose.yaml against the code: every service that runs one of our
//! binaries builds an existing service, its environment loads into the real config type
//! (so every `AUTHZ__` / `IDP__` / `RS__` variable names a real key), its published ports
//! are the ports that config listens on, its secrets are declared, generated and read
//! through `*_file` keys, its healthcheck asks the admin `/readyz`, and Prometheus scrapes
//! the three admin ports. The demo web app runs the demo tool's image; its command parses
//! as `demo app` (the demo crate's own clap types) and points at the services that are
//! really there. The public listeners serve https with the demo CA's certificates for the
//! names browsers and containers use, and whoever calls them over https trusts that CA
//! (issue 16). `docker compose config` validates the file where Docker exists.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_yaml::Value;

const SERVICES: [&str; 3] = ["authz", "idp", "rs"];
const SECRETS_DIR: &str = "/run/secrets/";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn compose_dir() -> PathBuf {
    repo().join("deployments/compose")
}

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

fn str_list(value: &Value) -> Vec<String> {
    value
        .as_sequence()
        .map(|s| {
            s.iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
}

/// A listener of a loaded config: (name, host, port).
type Listener = (&'static str, std::net::IpAddr, u16);

/// A gRPC link this service calls over TLS: the URL, the client `tls` section beside it,
/// and the client id the peer must see.
struct Link {
    url: String,
    tls: runtime::TlsClientConfig,
    as_client: String,
}

/// A gRPC server's TLS: its listener's `tls`, the certificate identities, Basic on or off.
struct GrpcServer {
    tls: runtime::TlsConfig,
    identities: BTreeMap<String, String>,
    basic_auth: bool,
}

/// What the test needs from a loaded service config.
struct Loaded {
    listeners: Vec<Listener>,
    /// gRPC URLs this service calls (host is a compose service name inside the network).
    calls: Vec<String>,
    /// The same calls with their TLS settings (issue 16).
    links: Vec<Link>,
    /// This service's gRPC server, when it has one.
    grpc_server: Option<GrpcServer>,
    /// HTTP back-channel URLs this service calls (a compose service's http listener).
    http_calls: Vec<String>,
    /// The issuer this service is (authz) or trusts (rs).
    issuer: Option<String>,
    /// The public listener's TLS (compose serves https there).
    http_tls: runtime::TlsConfig,
    /// idp's public URL: what idp says it is (idp), where authz sends browsers (authz).
    idp_public_url: Option<String>,
    /// The CA bundle the guard trusts for discovery and the JWKS over https (rs).
    jwks_ca: Option<PathBuf>,
    /// idp's upstream identity providers, by id (issue 20).
    upstreams: Vec<(String, idp::upstream::ProviderConfig)>,
}

/// Loads `service`'s config the way the image does (`configs/<service>.yaml` plus the
/// environment), with `/run/secrets/<name>` paths mapped to the generated secret files.
fn load(service: &str, env: &BTreeMap<String, String>, secrets: &Path) -> Loaded {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| {
            let v = match v.strip_prefix(SECRETS_DIR) {
                Some(name) => secrets.join(name).to_str().unwrap().to_owned(),
                None => v.clone(),
            };
            (k.clone(), v)
        })
        .collect();
    let file = config::ConfigSource::File(repo().join(format!("configs/{service}.yaml")));
    let fail =
        |e: config::ConfigError| -> ! { panic!("{service}: config from compose.yaml: {e:?}") };
    match service {
        "authz" => {
            let c: authz::AuthzConfig =
                config::load_with_env(service, &file, env).unwrap_or_else(|e| fail(e));
            Loaded {
                listeners: vec![
                    ("http", c.http.host, c.http.port),
                    ("grpc", c.grpc.host, c.grpc.port),
                    ("admin", c.admin.host, c.admin.port),
                ],
                calls: vec![c.idp.grpc_url.clone()],
                links: vec![Link {
                    url: c.idp.grpc_url,
                    tls: c.idp.tls,
                    as_client: c.idp.client_id.to_string(),
                }],
                grpc_server: Some(GrpcServer {
                    tls: c.grpc.tls,
                    identities: c.grpc.identities,
                    basic_auth: c.grpc.basic_auth,
                }),
                http_calls: Vec::new(),
                issuer: Some(c.issuer),
                http_tls: c.http.tls,
                idp_public_url: Some(c.idp.public_url),
                jwks_ca: None,
                upstreams: Vec::new(),
            }
        }
        "idp" => {
            let c: idp::IdpConfig =
                config::load_with_env(service, &file, env).unwrap_or_else(|e| fail(e));
            Loaded {
                listeners: vec![
                    ("http", c.http.host, c.http.port),
                    ("grpc", c.grpc.host, c.grpc.port),
                    ("admin", c.admin.host, c.admin.port),
                ],
                calls: vec![c.authz.grpc_url.clone()],
                links: vec![Link {
                    url: c.authz.grpc_url,
                    tls: c.authz.tls,
                    as_client: c.authz.client_id.to_string(),
                }],
                grpc_server: Some(GrpcServer {
                    tls: c.grpc.tls,
                    identities: c.grpc.identities,
                    basic_auth: c.grpc.basic_auth,
                }),
                // Upstream OpenID providers reached through a back channel.
                http_calls: c
                    .upstreams
                    .providers
                    .values()
                    .filter_map(|p| p.backchannel_url.as_ref().map(|u| u.to_string()))
                    .collect(),
                issuer: None,
                http_tls: c.http.tls,
                idp_public_url: Some(c.public_url.to_string()),
                jwks_ca: None,
                upstreams: c.upstreams.providers.into_iter().collect(),
            }
        }
        "rs" => {
            let c: rs::RsConfig =
                config::load_with_env(service, &file, env).unwrap_or_else(|e| fail(e));
            let calls = if c.guard.mode != guard::Mode::Jwt {
                vec![c.guard.introspection.endpoint.clone()]
            } else {
                Vec::new()
            };
            let http_calls = match (&c.guard.jwks.backchannel_url, c.guard.mode) {
                (Some(url), guard::Mode::Jwt | guard::Mode::Hybrid) => vec![url.clone()],
                _ => Vec::new(),
            };
            let links = if c.guard.mode != guard::Mode::Jwt {
                vec![Link {
                    url: c.guard.introspection.endpoint.clone(),
                    tls: c.guard.introspection.tls.clone(),
                    as_client: c.guard.introspection.client_id.clone().unwrap_or_default(),
                }]
            } else {
                Vec::new()
            };
            Loaded {
                listeners: vec![
                    ("http", c.http.host, c.http.port),
                    ("admin", c.admin.host, c.admin.port),
                ],
                calls,
                links,
                grpc_server: None,
                http_calls,
                issuer: Some(c.guard.issuer),
                http_tls: c.http.tls,
                idp_public_url: None,
                jwks_ca: c.guard.jwks.ca_file,
                upstreams: Vec::new(),
            }
        }
        other => panic!("no service {other}"),
    }
}

/// The certificates of `pem` (DER), in order.
fn pem_certs(pem: &Path) -> Vec<rustls_pki_types::CertificateDer<'static>> {
    use rustls_pki_types::pem::PemObject as _;
    rustls_pki_types::CertificateDer::pem_file_iter(pem)
        .unwrap_or_else(|e| panic!("{}: {e}", pem.display()))
        .collect::<Result<Vec<_>, _>>()
        .unwrap_or_else(|e| panic!("{}: {e}", pem.display()))
}

/// Verifies the leaf of `chain` (with its intermediates) against the roots of `ca` for
/// `usage` now, as the peer's rustls does.
fn verify_chain(ca: &Path, chain: &Path, usage: webpki::KeyUsage) -> Result<(), webpki::Error> {
    let roots = pem_certs(ca);
    let anchors: Vec<_> = roots
        .iter()
        .map(|root| webpki::anchor_from_trusted_cert(root).unwrap())
        .collect();
    let chain = pem_certs(chain);
    let leaf = webpki::EndEntityCert::try_from(&chain[0]).unwrap();
    leaf.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &anchors,
        &chain[1..],
        rustls_pki_types::UnixTime::now(),
        usage,
        None,
        None,
    )
    .map(|_| ())
}

/// Each gRPC link of the compose file is https with mutual TLS, checked with the generated
/// certificates the way the two ends check each other: the caller trusts a CA that signs
/// the server's certificate for the URL's host; the server requires client certificates
/// from a CA that signs the caller's, which carries a SAN that the server's
/// `grpc.identities` maps to the client id the caller acts as; Basic metadata is off.
fn tls_links_are_mutual(serving: &BTreeMap<String, (String, Loaded)>, secrets: &Path) {
    let mut links = 0;
    for (name, (_, loaded)) in serving {
        for link in &loaded.links {
            links += 1;
            let rest = link
                .url
                .strip_prefix("https://")
                .unwrap_or_else(|| panic!("{name}: gRPC link {} is not https", link.url));
            let host = rest.rsplit_once(':').unwrap().0;
            let (_, peer) = &serving[host];
            let server = peer
                .grpc_server
                .as_ref()
                .unwrap_or_else(|| panic!("{name} calls {host}, which has no gRPC server"));
            assert!(server.tls.enabled(), "{host}: grpc.tls is off");
            assert!(
                !server.basic_auth,
                "{host}: grpc.basic_auth must be false (mTLS only)"
            );
            let client_ca = server
                .tls
                .client_ca_file
                .as_ref()
                .unwrap_or_else(|| panic!("{host}: grpc.tls.client_ca_file is unset"));
            let server_cert = server.tls.cert_file.as_ref().expect("grpc.tls.cert_file");
            let ca = link.tls.ca_file.as_ref().expect("client tls.ca_file");
            let cert = link
                .tls
                .cert_file
                .as_ref()
                .unwrap_or_else(|| panic!("{name}: no client certificate for {}", link.url));
            assert!(link.tls.key_file.is_some(), "{name}: no client key");
            for path in [client_ca, server_cert, ca, cert] {
                assert!(
                    path.starts_with(secrets),
                    "{name}/{host}: {} is not a generated secret",
                    path.display()
                );
            }
            verify_chain(ca, server_cert, webpki::KeyUsage::server_auth())
                .unwrap_or_else(|e| panic!("{name} does not trust {host}'s certificate: {e:?}"));
            let expected = link.tls.server_name.clone().unwrap_or(host.to_owned());
            let server_leaf = &pem_certs(server_cert)[0];
            assert!(
                runtime::peer_identities(server_leaf).contains(&expected),
                "{host}'s certificate does not name {expected}"
            );
            verify_chain(client_ca, cert, webpki::KeyUsage::client_auth())
                .unwrap_or_else(|e| panic!("{host} does not accept {name}'s certificate: {e:?}"));
            let identities = runtime::peer_identities(&pem_certs(cert)[0]);
            let mapped = identities
                .iter()
                .find_map(|san| server.identities.get(san))
                .unwrap_or_else(|| {
                    panic!("{host}: grpc.identities maps none of {name}'s SANs {identities:?}")
                });
            assert_eq!(
                mapped, &link.as_client,
                "{host} maps {name}'s certificate to another client"
            );
        }
    }
    assert_eq!(
        links, 5,
        "idp -> authz, authz -> idp, rs -> authz and Demo Corp SSO's corp-idp <-> corp-authz are all checked"
    );
}

/// Whether the leaf of `chain` is valid for the DNS name or IP address `name`, as a TLS
/// client connecting to `name` checks it.
fn names(chain: &Path, name: &str) -> bool {
    let leaf = &pem_certs(chain)[0];
    let leaf = webpki::EndEntityCert::try_from(leaf).unwrap();
    let server_name = rustls_pki_types::ServerName::try_from(name).unwrap();
    leaf.verify_is_valid_for_subject_name(&server_name).is_ok()
}

/// The public listeners serve https with the demo CA's certificates (issue 16): each
/// service's `http.tls` pair is generated, and its leaf chains to the demo CA with the
/// server usage for the names browsers use (`localhost`) and the other containers use (the
/// service name); the issuer and idp's public URL are those https origins; rs's guard
/// trusts the demo CA for discovery and the JWKS (`guard.jwks.ca_file`).
fn public_listeners_are_https(serving: &BTreeMap<String, (String, Loaded)>, secrets: &Path) {
    let ca = secrets.join("tls_ca");
    for (name, (_, loaded)) in serving {
        let tls = &loaded.http_tls;
        assert!(tls.enabled(), "{name}: http.tls is off");
        let cert = tls
            .cert_file
            .as_ref()
            .unwrap_or_else(|| panic!("{name}: http.tls.cert_file is unset"));
        let key = tls
            .key_file
            .as_ref()
            .unwrap_or_else(|| panic!("{name}: http.tls.key_file is unset"));
        for path in [cert, key] {
            assert!(
                path.starts_with(secrets) && path.is_file(),
                "{name}: {} is not a generated secret",
                path.display()
            );
        }
        verify_chain(&ca, cert, webpki::KeyUsage::server_auth()).unwrap_or_else(|e| {
            panic!("the demo CA does not sign {name}'s https certificate: {e:?}")
        });
        // The browser's host: localhost for the first pair, 127.0.0.1 for Demo Corp SSO.
        for host in [browser_host(name), name.as_str()] {
            assert!(
                names(cert, host),
                "{name}'s https certificate does not name {host}"
            );
        }
        assert!(
            !names(cert, "example.com"),
            "{name}: the name check can fail"
        );
    }
    let http_port = |service: &str| port_of(&serving[service].1.listeners, "http");
    let authz = &serving["authz"].1;
    for pair in ["", "corp-"] {
        let (authz, idp) = (format!("{pair}authz"), format!("{pair}idp"));
        let host = browser_host(&authz);
        assert_eq!(
            serving[&authz].1.issuer.as_deref(),
            Some(format!("https://{host}:{}", http_port(&authz)).as_str()),
            "{authz}: issuer"
        );
        let idp_url = format!("https://{host}:{}", http_port(&idp));
        for service in [&authz, &idp] {
            let url = serving[service].1.idp_public_url.clone().unwrap();
            assert_eq!(
                url.trim_end_matches('/'),
                idp_url,
                "{service}: idp's public URL"
            );
        }
    }
    let jwks_ca = serving["rs"]
        .1
        .jwks_ca
        .as_ref()
        .expect("rs: guard.jwks.ca_file (discovery and JWKS over https)");
    let authz_cert = authz.http_tls.cert_file.as_ref().unwrap();
    verify_chain(jwks_ca, authz_cert, webpki::KeyUsage::server_auth())
        .unwrap_or_else(|e| panic!("rs does not trust authz's https certificate: {e:?}"));
}

/// The host browsers use for a service: Demo Corp SSO (`corp-…`) on 127.0.0.1, the first
/// pair on localhost. Cookies are per host, not per port: on one host the two pairs'
/// session cookies would overwrite each other.
fn browser_host(service: &str) -> &'static str {
    if service.starts_with("corp-") {
        "127.0.0.1"
    } else {
        "localhost"
    }
}

/// The authz a service belongs with: its pair's.
fn pair_authz(service: &str) -> &'static str {
    if service.starts_with("corp-") {
        "corp-authz"
    } else {
        "authz"
    }
}

fn port_of(listeners: &[Listener], name: &str) -> u16 {
    listeners.iter().find(|l| l.0 == name).unwrap().2
}

#[test]
fn compose_file_matches_the_service_configs() {
    let dir = compose_dir();
    let compose = yaml(&dir.join("compose.yaml"));
    let services = compose["services"].as_mapping().expect("services:");
    let declared: BTreeMap<String, String> = compose["secrets"]
        .as_mapping()
        .expect("top-level secrets:")
        .iter()
        .map(|(k, v)| {
            let file = v["file"]
                .as_str()
                .unwrap_or_else(|| panic!("secret {k:?} must be file-based"));
            (k.as_str().unwrap().to_owned(), file.to_owned())
        })
        .collect();

    // The secrets script creates every declared secret, under git-ignored ./secrets.
    let generated = tempfile::tempdir().unwrap();
    let status = Command::new(dir.join("gen-secrets.sh"))
        .arg(generated.path())
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "gen-secrets.sh failed");
    for (name, file) in &declared {
        assert_eq!(file, &format!("./secrets/{name}"), "secret {name}");
        let contents = std::fs::read_to_string(generated.path().join(name))
            .unwrap_or_else(|e| panic!("gen-secrets.sh did not create {name}: {e}"));
        assert!(!contents.trim().is_empty(), "secret {name} is empty");
    }
    let gitignore = std::fs::read_to_string(repo().join(".gitignore")).unwrap();
    assert!(
        gitignore
            .lines()
            .any(|l| l.trim() == "/deployments/compose/secrets/"),
        ".gitignore must ignore /deployments/compose/secrets/"
    );
    // Running it again keeps what exists.
    let before = std::fs::read(generated.path().join("authz_kek")).unwrap();
    let status = Command::new(dir.join("gen-secrets.sh"))
        .arg(generated.path())
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        before,
        std::fs::read(generated.path().join("authz_kek")).unwrap()
    );

    let dockerfile = std::fs::read_to_string(repo().join("deployments/docker/Dockerfile")).unwrap();
    // The image: multi-stage, the service's configuration under /etc/<service>/ and used
    // through --config, a non-root user, a HEALTHCHECK (its ports are checked per service).
    for needle in [
        "FROM rust:1-bookworm AS builder",
        "FROM debian:bookworm-slim",
        "ARG SERVICE",
        "COPY configs/${SERVICE}.yaml /etc/${SERVICE}/${SERVICE}.yaml",
        "--config /etc/%s/%s.yaml",
        "USER app",
        "HEALTHCHECK",
        "/readyz",
    ] {
        assert!(dockerfile.contains(needle), "Dockerfile lacks {needle:?}");
    }
    assert!(dockerfile.contains("useradd --system --uid 10001"));

    let mut profiles = BTreeSet::new();
    let mut used_secrets = BTreeSet::new();
    let mut serving: BTreeMap<String, (String, Loaded)> = BTreeMap::new();
    let mut demo_apps: Vec<(String, Value)> = Vec::new();

    for (name, svc) in services {
        let name = name.as_str().unwrap();
        let svc_profiles = str_list(&svc["profiles"]);
        assert!(!svc_profiles.is_empty(), "{name}: no profile");
        profiles.extend(svc_profiles);

        let env: BTreeMap<String, String> = svc["environment"]
            .as_mapping()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        let v = match v {
                            Value::String(s) => s.clone(),
                            other => panic!("{name}: {k:?}: quote non-string values ({other:?})"),
                        };
                        (k.as_str().unwrap().to_owned(), v)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let command = serde_yaml::to_string(&svc["command"]).unwrap();

        // Secrets: declared at the top, mounted here, and read through a `*_file` key
        // (an environment variable ending in _FILE or a CLI --…-file argument).
        let mounted: BTreeSet<String> = str_list(&svc["secrets"]).into_iter().collect();
        for secret in &mounted {
            assert!(
                declared.contains_key(secret),
                "{name}: undeclared secret {secret}"
            );
            let path = format!("{SECRETS_DIR}{secret}");
            let by_env = env.iter().any(|(k, v)| k.ends_with("_FILE") && *v == path);
            let argv = str_list(&svc["command"]);
            let by_flag = command.contains(&format!("-file {path}"))
                || argv
                    .windows(2)
                    .any(|w| w[0].ends_with("-file") && w[1] == path);
            assert!(
                by_env || by_flag,
                "{name}: secret {secret} is mounted but never read"
            );
            used_secrets.insert(secret.clone());
        }
        for (key, value) in &env {
            if let Some(secret) = value.strip_prefix(SECRETS_DIR) {
                assert!(key.ends_with("_FILE"), "{name}: {key} must be a *_FILE key");
                assert!(
                    mounted.contains(secret),
                    "{name}: {key}: {secret} not mounted"
                );
            }
            let upper = key.to_ascii_uppercase();
            // The key's last segment names what it holds: IDP__MAIL__PASSWORD is a secret,
            // IDP__PASSWORD_RESET__ENABLED a switch.
            let last = upper.rsplit("__").next().unwrap_or(&upper);
            if ["SECRET", "PASSWORD", "KEY"]
                .iter()
                .any(|s| last.contains(s))
                || upper.contains("DATABASE__URL")
            {
                assert!(
                    upper.ends_with("_FILE"),
                    "{name}: {key} is inline; use {key}_FILE"
                );
            }
        }
        for part in command.split(SECRETS_DIR).skip(1) {
            let secret: String = part
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            assert!(
                mounted.contains(&secret),
                "{name}: command reads unmounted {secret}"
            );
        }

        // The demo web app: the demo tool's image, checked once all is loaded.
        if svc["build"]["args"]["SERVICE"].as_str() == Some("demo") {
            demo_apps.push((name.to_owned(), svc.clone()));
            continue;
        }

        // Services running one of our binaries.
        let Some(build) = svc.get("build") else {
            assert!(
                env.keys().all(|k| !SERVICES
                    .iter()
                    .any(|s| k.starts_with(&format!("{}__", s.to_ascii_uppercase())))),
                "{name}: service variables without our image"
            );
            continue;
        };
        assert_eq!(
            build["dockerfile"].as_str(),
            Some("deployments/docker/Dockerfile")
        );
        let context = dir.join(build["context"].as_str().unwrap());
        assert!(
            context.join("deployments/docker/Dockerfile").is_file(),
            "{name}: build context {context:?} is not the repository root"
        );
        let binary = build["args"]["SERVICE"].as_str().unwrap().to_owned();
        assert!(
            SERVICES.contains(&binary.as_str()),
            "{name}: no service {binary}"
        );
        assert!(
            repo()
                .join("services")
                .join(&binary)
                .join("Cargo.toml")
                .is_file()
        );
        assert_eq!(
            svc["image"].as_str(),
            Some(format!("identity-platform/{binary}").as_str()),
            "{name}: image name"
        );
        let prefix = format!("{}__", binary.to_ascii_uppercase());
        for key in env.keys() {
            assert!(
                key.starts_with(&prefix),
                "{name}: {key} is not a {binary} variable"
            );
        }
        let loaded = load(&binary, &env, generated.path());

        let ports: Vec<String> = svc["ports"]
            .as_sequence()
            .map(|s| {
                s.iter()
                    .map(|p| p.as_str().expect("ports as strings").to_owned())
                    .collect()
            })
            .unwrap_or_default();
        let serves = svc.get("entrypoint").is_none();
        if !serves {
            assert!(ports.is_empty(), "{name}: a one-shot job publishes no port");
            continue;
        }
        // Every listener is published on the same host port, and bound to all interfaces
        // so that the published port reaches it.
        let published: BTreeSet<u16> = ports
            .iter()
            .map(|p| {
                let (host, container) = p.rsplit_once(':').unwrap();
                assert_eq!(
                    host, container,
                    "{name}: {p}: host and container ports differ"
                );
                container.parse().unwrap()
            })
            .collect();
        let listening: BTreeSet<u16> = loaded.listeners.iter().map(|l| l.2).collect();
        assert_eq!(published, listening, "{name}: published ports vs config");
        for (listener, host, port) in &loaded.listeners {
            assert!(
                host.is_unspecified(),
                "{name}: {listener} :{port} binds {host}"
            );
        }
        // The healthcheck asks the admin listener's /readyz; so does the image's own.
        let admin = port_of(&loaded.listeners, "admin");
        let test = str_list(&svc["healthcheck"]["test"]);
        assert!(
            test.iter()
                .any(|a| *a == format!("http://127.0.0.1:{admin}/readyz")),
            "{name}: healthcheck {test:?} must hit http://127.0.0.1:{admin}/readyz"
        );
        // The image's HEALTHCHECK knows the default admin ports; Demo Corp SSO's services
        // listen elsewhere and rely on their compose healthcheck (which replaces it).
        if name == binary {
            assert!(
                dockerfile.contains(&format!("{binary}) admin={admin}")),
                "Dockerfile HEALTHCHECK port of {binary} is not {admin}"
            );
        }
        assert!(dockerfile.contains("HEALTHCHECK"));
        assert!(
            name == binary || name == format!("corp-{binary}"),
            "the serving service {name} is named after its binary {binary} (corp-{binary} for Demo Corp SSO)"
        );
        serving.insert(name.to_owned(), (binary, loaded));
    }

    for profile in ["demo", "dev", "observability"] {
        assert!(profiles.contains(profile), "no profile {profile}");
    }
    let in_profile = |profile: &str| -> BTreeSet<String> {
        services
            .iter()
            .filter(|(_, s)| str_list(&s["profiles"]).iter().any(|p| p == profile))
            .map(|(n, _)| n.as_str().unwrap().to_owned())
            .collect()
    };
    for name in [
        "postgres",
        "authz",
        "idp",
        "rs",
        "authz-seed",
        "corp-authz",
        "corp-idp",
        "corp-authz-seed",
        "corp-idp-seed",
    ] {
        assert!(in_profile("demo").contains(name), "demo lacks {name}");
    }
    // The demo profile's authz and idp seed the demo data themselves; rs has none.
    for (name, command) in [
        ("authz", vec!["serve", "--demo"]),
        ("idp", vec!["serve", "--demo"]),
        ("rs", vec![]),
    ] {
        assert_eq!(
            str_list(&services[name]["command"]),
            command,
            "{name}: command"
        );
    }
    for name in ["otel-collector", "jaeger", "prometheus"] {
        assert!(
            in_profile("observability").contains(name),
            "observability lacks {name}"
        );
        assert!(in_profile("dev").contains(name), "dev lacks {name}");
    }
    assert!(in_profile("dev").contains("postgres"));
    for name in SERVICES {
        assert!(serving.contains_key(name), "no serving {name}");
        assert!(
            !in_profile("dev").contains(name),
            "dev runs {name} (cargo run does)"
        );
    }
    assert_eq!(
        used_secrets,
        declared.keys().cloned().collect(),
        "declared but unused secrets"
    );

    // Calls between services name a compose service and its gRPC port.
    for (name, (_, loaded)) in &serving {
        for url in &loaded.calls {
            let (host, port) = url
                .strip_prefix("https://")
                .and_then(|r| r.trim_end_matches('/').rsplit_once(':'))
                .unwrap_or_else(|| panic!("{name}: {url}"));
            let (_, peer) = serving
                .get(host)
                .unwrap_or_else(|| panic!("{name} calls {url}: no such compose service"));
            assert_eq!(
                port.parse::<u16>().unwrap(),
                port_of(&peer.listeners, "grpc")
            );
        }
    }

    // Every gRPC link runs over mutual TLS (issue 16).
    tls_links_are_mutual(&serving, generated.path());
    // The public listeners serve https with the demo CA (issue 16).
    public_listeners_are_https(&serving, generated.path());

    // HTTP back channels name a compose service's http listener over https; everyone
    // agrees on the issuer.
    let http_port_of = |url: &str| -> (String, u16) {
        let (host, port) = url
            .strip_prefix("https://")
            .and_then(|r| r.trim_end_matches('/').rsplit_once(':'))
            .unwrap_or_else(|| panic!("{url}: not https://service:port"));
        (host.to_owned(), port.parse().unwrap())
    };
    let authz_issuer = serving["authz"].1.issuer.clone().unwrap();
    for (name, (_, loaded)) in &serving {
        let authz_issuer = serving[pair_authz(name)].1.issuer.clone().unwrap();
        for url in &loaded.http_calls {
            let (host, port) = http_port_of(url);
            let (_, peer) = serving
                .get(&host)
                .unwrap_or_else(|| panic!("{name} calls {url}: no such compose service"));
            assert_eq!(port, port_of(&peer.listeners, "http"), "{name}: {url}");
        }
        if let Some(issuer) = &loaded.issuer {
            assert_eq!(issuer, &authz_issuer, "{name} trusts another issuer");
        }
    }
    assert!(
        !serving["rs"].1.http_calls.is_empty(),
        "rs verifies JWTs locally but cannot reach {authz_issuer} from its container: set guard.jwks.backchannel_url"
    );
    demo_corp_sso_is_idps_upstream(services, &serving, generated.path());

    // The demo web app: the demo tool's image (the Dockerfile's `demo` stage), its command
    // is valid for `demo app`, it listens on the published port behind the demo clients'
    // redirect URIs, and reaches authz and rs.
    let [(name, app)] = demo_apps.as_slice() else {
        panic!("expected one demo-app service, got {demo_apps:?}");
    };
    let argv = std::iter::once("demo".to_owned()).chain(str_list(&app["command"]));
    let parsed = match <demo::cli::Cli as clap::Parser>::try_parse_from(argv)
        .unwrap_or_else(|e| panic!("{name}: command: {e}"))
        .command
    {
        demo::cli::Command::App(args) => args,
        other => panic!("{name}: runs {other:?}, not `demo app`"),
    };
    assert_eq!(
        app["build"]["target"].as_str(),
        Some("demo"),
        "{name}: target"
    );
    assert_eq!(app["image"].as_str(), Some("identity-platform/demo"));
    assert!(
        dockerfile.contains("FROM debian:bookworm-slim AS demo")
            && dockerfile.contains("COPY --from=builder /out/demo /usr/local/bin/demo"),
        "the Dockerfile has no demo stage with the demo binary"
    );
    assert!(repo().join("tools/demo/Cargo.toml").is_file());
    assert!(str_list(&app["profiles"]).contains(&"demo".to_owned()));
    assert!(
        parsed.listen.ip().is_unspecified(),
        "{name}: binds {}",
        parsed.listen
    );
    let port = parsed.listen.port();
    assert_eq!(str_list(&app["ports"]), vec![format!("{port}:{port}")]);
    assert_eq!(
        demo::seeded::app_uri(&parsed.public_url, demo::seeded::CALLBACK_PATH),
        authz::demo_seed::REDIRECT_URI
    );
    assert_eq!(
        demo::seeded::app_uri(&parsed.public_url, demo::seeded::SPA_CALLBACK_PATH),
        authz::demo_seed::SPA_REDIRECT_URI
    );
    assert_eq!(
        demo::seeded::app_uri(&parsed.public_url, demo::seeded::POST_LOGOUT_PATH),
        authz::demo_seed::POST_LOGOUT_REDIRECT_URI
    );
    assert!(parsed.public_url.ends_with(&format!(":{port}")));
    assert_eq!(parsed.issuer, authz_issuer);
    // It reaches authz and rs over https and trusts the demo CA that signs their
    // certificates for the names it uses (--ca-file, the mounted secret tls_ca).
    let app_ca = parsed
        .ca_file
        .as_ref()
        .unwrap_or_else(|| panic!("{name}: no --ca-file for the https services"));
    let app_ca = app_ca
        .to_str()
        .unwrap()
        .strip_prefix(SECRETS_DIR)
        .unwrap_or_else(|| panic!("{name}: --ca-file {} is not a secret", app_ca.display()));
    assert!(
        str_list(&app["secrets"]).iter().any(|s| s == app_ca),
        "{name}: --ca-file {app_ca} is not mounted"
    );
    let app_ca = generated.path().join(app_ca);
    for (url, peer) in [
        (parsed.backchannel.clone().unwrap_or_default(), "authz"),
        (parsed.rs.clone(), "rs"),
    ] {
        let (host, p) = http_port_of(&url);
        assert_eq!(host, peer, "{name}: {url}");
        assert_eq!(
            p,
            port_of(&serving[peer].1.listeners, "http"),
            "{name}: {url}"
        );
        let cert = serving[peer].1.http_tls.cert_file.as_ref().unwrap();
        verify_chain(&app_ca, cert, webpki::KeyUsage::server_auth())
            .unwrap_or_else(|e| panic!("{name} does not trust {peer}'s certificate: {e:?}"));
        assert!(
            names(cert, &host),
            "{peer}'s certificate does not name {host}"
        );
    }
    assert!(
        str_list(&app["healthcheck"]["test"]).contains(&format!("http://127.0.0.1:{port}/healthz")),
        "{name}: healthcheck"
    );
    for dep in ["authz", "idp", "rs"] {
        assert_eq!(
            app["depends_on"][dep]["condition"].as_str(),
            Some("service_healthy"),
            "{name} must wait for {dep}"
        );
    }

    // depends_on: health-gated, on services that exist and can report it.
    for (name, svc) in services {
        let Some(deps) = svc.get("depends_on") else {
            continue;
        };
        for (dep, how) in deps
            .as_mapping()
            .expect("depends_on as a map with conditions")
        {
            let dep = dep.as_str().unwrap();
            let target = &services[dep];
            let condition = how["condition"].as_str().unwrap();
            match condition {
                "service_healthy" => assert!(
                    target.get("healthcheck").is_some()
                        && target["healthcheck"].get("disable").is_none(),
                    "{name:?} waits for {dep} to be healthy; it has no healthcheck"
                ),
                "service_completed_successfully" => assert!(target.get("entrypoint").is_some()),
                "service_started" => assert!(
                    target.get("build").is_none(),
                    "{name:?}: gate {dep} on health"
                ),
                other => panic!("{name:?}: condition {other}"),
            }
        }
    }
    for name in SERVICES {
        assert!(
            services[name].get("depends_on").is_some(),
            "{name} starts ungated"
        );
    }

    // Mounted files exist.
    for (name, svc) in services {
        for volume in str_list(&svc["volumes"]) {
            if let Some(rest) = volume.strip_prefix("./") {
                let file = rest.split(':').next().unwrap();
                assert!(dir.join(file).is_file(), "{name:?} mounts missing {file}");
            }
        }
    }

    // Prometheus scrapes the three admin ports of the containers.
    let prometheus = yaml(&dir.join("prometheus.yml"));
    let targets: BTreeSet<String> = prometheus["scrape_configs"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter(|job| {
            job.get("metrics_path")
                .is_none_or(|p| p.as_str() == Some("/metrics"))
        })
        .flat_map(|job| {
            job["static_configs"]
                .as_sequence()
                .cloned()
                .unwrap_or_default()
        })
        .flat_map(|sc| str_list(&sc["targets"]))
        .collect();
    for (name, (_, loaded)) in &serving {
        let target = format!("{name}:{}", port_of(&loaded.listeners, "admin"));
        assert!(
            targets.contains(&target),
            "Prometheus does not scrape {target}"
        );
    }

    // The collector receives OTLP/gRPC on the published 4317 and exports to Jaeger.
    let collector = yaml(&dir.join("otel-collector.yaml"));
    assert_eq!(
        collector["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"].as_str(),
        Some("0.0.0.0:4317")
    );
    let pipeline = str_list(&collector["service"]["pipelines"]["traces"]["exporters"]);
    assert!(!pipeline.is_empty());
    for exporter in &pipeline {
        let endpoint = collector["exporters"][exporter.as_str()]["endpoint"]
            .as_str()
            .unwrap();
        let host = endpoint.split(':').next().unwrap();
        assert!(
            services.get(host).is_some(),
            "collector exports to unknown {endpoint}"
        );
    }
    assert!(str_list(&services["otel-collector"]["ports"]).contains(&"4317:4317".to_owned()));

    docker_compose_config(&dir);
}

/// Demo Corp SSO (issue 20): idp offers the second pair as upstream `corp`. Its issuer is
/// corp-authz's (what browsers use); idp reaches it through a back channel to corp-authz's
/// https listener, trusting a CA that signs corp-authz's certificate for that name; its
/// client id and secret are those corp-authz-seed registers, with idp's callback as the
/// redirect URI; corp-idp-seed creates carol with the documented password.
fn demo_corp_sso_is_idps_upstream(
    services: &serde_yaml::Mapping,
    serving: &BTreeMap<String, (String, Loaded)>,
    secrets: &Path,
) {
    let idp = &serving["idp"].1;
    let [(id, corp)] = idp.upstreams.as_slice() else {
        panic!(
            "idp: expected one upstream provider, got {}",
            idp.upstreams.len()
        );
    };
    assert_eq!(id, "corp");
    assert_eq!(corp.kind, idp::upstream::ProviderKind::Oidc);
    assert_eq!(corp.display_name, "Demo Corp SSO");
    let corp_authz = &serving["corp-authz"].1;
    let issuer = corp
        .issuer
        .as_ref()
        .expect("upstreams.providers.corp.issuer");
    assert_eq!(
        issuer.as_str().trim_end_matches('/'),
        corp_authz.issuer.as_deref().unwrap(),
        "idp: upstream corp's issuer is not corp-authz's"
    );
    let back = corp
        .backchannel_url
        .as_ref()
        .expect("idp cannot reach 127.0.0.1:8180 from its container: set upstreams.providers.corp.backchannel_url");
    let back_host = back.host_str().unwrap();
    assert_eq!(back_host, "corp-authz");
    assert_eq!(back.port(), Some(port_of(&corp_authz.listeners, "http")));
    let ca = corp
        .ca_file
        .as_ref()
        .expect("upstreams.providers.corp.ca_file (corp-authz serves the demo CA's certificate)");
    assert!(
        ca.starts_with(secrets),
        "{}: not a generated secret",
        ca.display()
    );
    let cert = corp_authz.http_tls.cert_file.as_ref().unwrap();
    verify_chain(ca, cert, webpki::KeyUsage::server_auth())
        .unwrap_or_else(|e| panic!("idp does not trust corp-authz's certificate: {e:?}"));
    for host in [back_host, issuer.host_str().unwrap()] {
        assert!(
            names(cert, host),
            "corp-authz's certificate does not name {host}"
        );
    }
    assert!(
        !names(cert, "localhost"),
        "corp-authz's certificate names localhost, the first pair's browser host"
    );

    // The seed job registers the client idp uses, with idp's callback and the same secret.
    let seed = &services["corp-authz-seed"];
    let script = str_list(&seed["command"]).join("\n");
    let callback = format!(
        "{}upstream/corp/callback",
        idp.idp_public_url.as_deref().unwrap()
    );
    let register = script
        .lines()
        .find(|l| l.contains(&format!("clients create --id {} ", corp.client_id)))
        .unwrap_or_else(|| panic!("corp-authz-seed does not register {}", corp.client_id));
    assert!(
        register.contains(&format!("--redirect-uri {callback} ")),
        "corp-authz-seed: {} lacks the redirect URI {callback}",
        corp.client_id
    );
    assert!(register.contains("--grant-type authorization_code"));
    let secret = register
        .split("--secret-file ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|p| p.strip_prefix(SECRETS_DIR))
        .expect("corp-authz-seed: --secret-file /run/secrets/<name>");
    let registered = std::fs::read_to_string(secrets.join(secret)).unwrap();
    assert_eq!(
        corp.client_secret.as_ref().map(|s| s.expose().as_str()),
        Some(registered.as_str()),
        "idp's client secret for corp is not the one corp-authz-seed registers"
    );
    // carol / carol-password at corp-idp.
    let seed = &services["corp-idp-seed"];
    let script = str_list(&seed["command"]).join("\n");
    let create = script
        .lines()
        .find(|l| l.contains("users create --username carol "))
        .expect("corp-idp-seed does not create carol");
    let password = create
        .split("--password-file ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|p| p.strip_prefix(SECRETS_DIR))
        .expect("corp-idp-seed: --password-file /run/secrets/<name>");
    assert_eq!(
        std::fs::read_to_string(secrets.join(password)).unwrap(),
        "carol-password"
    );
    // Both seed jobs run before their services and see the corp databases, not the first pair's.
    for (job, service, key) in [
        ("corp-authz-seed", "corp-authz", "AUTHZ__DATABASE__URL_FILE"),
        ("corp-idp-seed", "corp-idp", "IDP__DATABASE__URL_FILE"),
    ] {
        assert_eq!(
            services[service]["depends_on"][job]["condition"].as_str(),
            Some("service_completed_successfully"),
            "{service} must wait for {job}"
        );
        let url = services[job]["environment"][key].as_str().unwrap();
        assert_eq!(url, services[service]["environment"][key].as_str().unwrap());
        let database =
            std::fs::read_to_string(secrets.join(url.strip_prefix(SECRETS_DIR).unwrap())).unwrap();
        let name = service.replace('-', "_");
        assert!(database.ends_with(&format!("/{name}")), "{job}: {database}");
        let init = std::fs::read_to_string(compose_dir().join("postgres-init.sql")).unwrap();
        assert!(
            init.contains(&format!("CREATE DATABASE {name};")),
            "postgres-init.sql does not create {name}"
        );
    }
}

/// `docker compose config` where Docker and its compose plugin are installed (skipped, with
/// a message, elsewhere). It needs no running engine.
fn docker_compose_config(dir: &Path) {
    let compose = Command::new("docker")
        .args(["compose", "version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !compose {
        eprintln!(
            "SKIPPED: `docker compose` is not available here, so `docker compose config` was not run"
        );
        return;
    }
    let output = Command::new("docker")
        .args(["compose", "-f", "compose.yaml"])
        .args([
            "--profile",
            "demo",
            "--profile",
            "dev",
            "--profile",
            "observability",
        ])
        .args(["config", "--quiet"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "docker compose config: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The demo profile's seeding, with the real binaries on SQLite instead of PostgreSQL, in
/// compose's order and twice: the `authz-seed` job (migrations, idp's LoginFlow client),
/// then authz and idp started with their compose `command` (`serve --demo`), environment
/// and secrets (every port 0). The first round registers the client idp and seeds the demo
/// clients and user; the second creates nothing, and every step still succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_profile_seeds_the_demo_data_once() {
    tokio::task::spawn_blocking(crate::harness::build_once)
        .await
        .unwrap();
    let dir = compose_dir();
    let compose = yaml(&dir.join("compose.yaml"));
    let work = tempfile::tempdir().unwrap();
    let secrets = work.path().join("secrets");
    let status = Command::new(dir.join("gen-secrets.sh"))
        .arg(&secrets)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    // `service` is the image's wrapper: the binary with its configuration file.
    let bin = work.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let authz = crate::harness::binary("authz");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let config_of = |service: &str| repo().join(format!("configs/{service}.yaml"));
    // The compose environment of `svc`, secrets and database URLs pointing at this test's
    // files (SQLite databases under `work`).
    let environment = |svc: &Value, service: &str| -> Vec<(String, String)> {
        let database = work.path().join(format!("{service}.url"));
        std::fs::write(
            &database,
            format!(
                "sqlite://{}",
                work.path().join(format!("{service}.db")).display()
            ),
        )
        .unwrap();
        svc["environment"]
            .as_mapping()
            .unwrap()
            .iter()
            .map(|(key, value)| {
                let key = key.as_str().unwrap().to_owned();
                let value = value.as_str().unwrap();
                let value = if key.ends_with("__DATABASE__URL_FILE") {
                    database.display().to_string()
                } else {
                    value.replace(SECRETS_DIR, &format!("{}/", secrets.display()))
                };
                (key, value)
            })
            .collect()
    };

    let mut rounds: Vec<BTreeMap<&str, Vec<String>>> = Vec::new();
    for round in 0..2 {
        let mut printed: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        let svc = &compose["services"]["authz-seed"];
        let shim = bin.join("service");
        std::fs::write(
            &shim,
            format!(
                "#!/bin/sh\nexec '{}' \"$@\" --config '{}'\n",
                authz.display(),
                config_of("authz").display()
            ),
        )
        .unwrap();
        let mut perms = std::fs::metadata(&shim).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&shim, perms).unwrap();
        assert_eq!(
            str_list(&svc["entrypoint"]),
            ["/bin/sh", "-ec"],
            "authz-seed: entrypoint"
        );
        let script = str_list(&svc["command"]).join("\n");
        let script = script.replace(SECRETS_DIR, &format!("{}/", secrets.display()));
        let output = Command::new("/bin/sh")
            .arg("-ec")
            .arg(&script)
            .current_dir(repo())
            .env("PATH", &path)
            .envs(environment(svc, "authz"))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "authz-seed (round {round}): {}",
            String::from_utf8_lossy(&output.stderr)
        );
        printed.insert(
            "authz-seed",
            String::from_utf8_lossy(&output.stdout)
                .lines()
                .filter(|l| l.starts_with("seed: "))
                .map(str::to_owned)
                .collect(),
        );

        // authz first: idp waits for it to be healthy.
        for service in ["authz", "idp"] {
            let svc = &compose["services"][service];
            let mut args = str_list(&svc["command"]);
            args.extend([
                "--config".to_owned(),
                config_of(service).display().to_string(),
            ]);
            let running = crate::harness::Service::start_with(
                service,
                &args,
                work.path(),
                &environment(svc, service),
            )
            .await;
            let (code, stdout) = running
                .terminate_with_output(std::time::Duration::from_secs(30))
                .await;
            assert_eq!(code, Some(0), "{service} (round {round}) exit code");
            printed.insert(
                service,
                stdout
                    .into_iter()
                    .filter(|l| l.starts_with("demo: "))
                    .collect(),
            );
        }
        rounds.push(printed);
    }
    let expect = |lines: &[(&'static str, &[&str])]| -> BTreeMap<&'static str, Vec<String>> {
        lines
            .iter()
            .map(|(k, v)| (*k, v.iter().map(|l| (*l).to_owned()).collect()))
            .collect()
    };
    assert_eq!(
        rounds[0],
        expect(&[
            ("authz-seed", &["seed: registered client idp"]),
            (
                "authz",
                &[
                    "demo: registered client demo-client / demo-secret",
                    "demo: registered public client demo-spa (PKCE, no secret)",
                    "demo: registered client demo-rs / demo-rs-secret (may introspect)",
                    "demo: registered public client demo-tv (device flow, no secret)",
                    "demo: registered admin client demo-admin / demo-admin-secret (every admin scope; Swagger UI at /admin/docs on the admin port)",
                ]
            ),
            ("idp", &["demo: created user demo / demo-password"]),
        ]),
        "first round"
    );
    assert_eq!(
        rounds[1],
        expect(&[
            ("authz-seed", &[]),
            (
                "authz",
                &[
                    "demo: clients demo-client, demo-spa, demo-rs and demo-tv are registered; nothing seeded"
                ]
            ),
            ("idp", &["demo: user demo exists; nothing seeded"]),
        ]),
        "second round"
    );
    // Demo Corp SSO's seed jobs (issue 20), twice, each with its binary behind `service`
    // and its own database: the first run registers corp idp's LoginFlow client and
    // demo-idp and creates carol; the second creates nothing and still succeeds.
    let idp_bin = crate::harness::binary("idp");
    let mut corp_rounds: Vec<BTreeMap<&str, Vec<String>>> = Vec::new();
    for round in 0..2 {
        let mut printed: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (job, binary, database) in [
            ("corp-authz-seed", &authz, "corp_authz"),
            ("corp-idp-seed", &idp_bin, "corp_idp"),
        ] {
            let svc = &compose["services"][job];
            let service = if job == "corp-authz-seed" {
                "authz"
            } else {
                "idp"
            };
            let shim = bin.join("service");
            std::fs::write(
                &shim,
                format!(
                    "#!/bin/sh\nexec '{}' \"$@\" --config '{}'\n",
                    binary.display(),
                    config_of(service).display()
                ),
            )
            .unwrap();
            let mut perms = std::fs::metadata(&shim).unwrap().permissions();
            std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
            std::fs::set_permissions(&shim, perms).unwrap();
            assert_eq!(str_list(&svc["entrypoint"]), ["/bin/sh", "-ec"], "{job}");
            let script = str_list(&svc["command"]).join("\n");
            let script = script.replace(SECRETS_DIR, &format!("{}/", secrets.display()));
            let output = Command::new("/bin/sh")
                .arg("-ec")
                .arg(&script)
                .current_dir(repo())
                .env("PATH", &path)
                .envs(environment(svc, database))
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "{job} (round {round}): {}",
                String::from_utf8_lossy(&output.stderr)
            );
            printed.insert(
                job,
                String::from_utf8_lossy(&output.stdout)
                    .lines()
                    .filter(|l| l.starts_with("seed: "))
                    .map(str::to_owned)
                    .collect(),
            );
        }
        corp_rounds.push(printed);
    }
    assert_eq!(
        corp_rounds,
        vec![
            expect(&[
                (
                    "corp-authz-seed",
                    &[
                        "seed: registered client idp",
                        "seed: registered client demo-idp"
                    ]
                ),
                ("corp-idp-seed", &["seed: created user carol"]),
            ]),
            expect(&[("corp-authz-seed", &[]), ("corp-idp-seed", &[])]),
        ],
        "Demo Corp SSO's seed jobs"
    );

    // rs introspects as demo-rs with the secret compose mounts for it: the one authz seeded.
    let rs_secret = std::fs::read_to_string(secrets.join("rs_client_secret")).unwrap();
    assert_eq!(rs_secret, authz::demo_seed::RS_CLIENT_SECRET);
    let rs_env = &compose["services"]["rs"]["environment"];
    assert_eq!(
        rs_env["RS__GUARD__INTROSPECTION__CLIENT_ID"].as_str(),
        Some(authz::demo_seed::RS_CLIENT_ID)
    );
    assert_eq!(
        rs_env["RS__GUARD__INTROSPECTION__CLIENT_SECRET_FILE"].as_str(),
        Some("/run/secrets/rs_client_secret")
    );
}

/// docs/configuration.md is what `make config-reference` generates from the binaries
/// (whose embedded configs/*.yaml each service's unit test keeps equal to its config type).
#[test]
fn configuration_reference_is_current() {
    let out = std::process::Command::new("bash")
        .arg(repo().join("docs/gen-configuration.sh"))
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let committed = std::fs::read_to_string(repo().join("docs/configuration.md")).unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout) == committed,
        "docs/configuration.md is stale: run `make config-reference`"
    );
}

/// The demo tool knows the demo data as constants, like any relying party knows its
/// registration: they must be what `authz serve --demo` and `idp serve --demo` seed.
#[test]
fn the_demo_tool_knows_what_the_services_seed() {
    use demo::seeded;
    assert_eq!(seeded::CLIENT_ID, authz::demo_seed::CLIENT_ID);
    assert_eq!(seeded::CLIENT_SECRET, authz::demo_seed::CLIENT_SECRET);
    assert_eq!(seeded::SPA_CLIENT_ID, authz::demo_seed::SPA_CLIENT_ID);
    assert_eq!(seeded::RS_CLIENT_ID, authz::demo_seed::RS_CLIENT_ID);
    assert_eq!(seeded::RS_CLIENT_SECRET, authz::demo_seed::RS_CLIENT_SECRET);
    assert_eq!(seeded::SCOPES, authz::demo_seed::SCOPES);
    assert_eq!(seeded::AUDIENCE, authz::demo_seed::AUDIENCE);
    assert_eq!(
        seeded::app_uri(seeded::APP_URL, seeded::CALLBACK_PATH),
        authz::demo_seed::REDIRECT_URI
    );
    assert_eq!(
        seeded::app_uri(seeded::APP_URL, seeded::SPA_CALLBACK_PATH),
        authz::demo_seed::SPA_REDIRECT_URI
    );
    assert_eq!(
        seeded::app_uri(seeded::APP_URL, seeded::POST_LOGOUT_PATH),
        authz::demo_seed::POST_LOGOUT_REDIRECT_URI
    );
    assert_eq!(seeded::USERNAME, idp::demo_seed::USERNAME);
    assert_eq!(seeded::PASSWORD, idp::demo_seed::PASSWORD);
}
