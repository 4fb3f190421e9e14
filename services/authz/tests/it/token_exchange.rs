//! Token exchange (RFC 8693) at the token endpoint, introspection of refresh tokens
//! (RFC 7662 §2.1-§2.2) and revocation of another client's tokens (RFC 7009 §2.1), through
//! the in-process server on SQLite and PostgreSQL.

use std::sync::Arc;
use std::time::Duration;

use authz::clients::{Clients, NewClient, TokenExchangePolicy};
use domain::{AccessTokenFormat, GrantType, ScopeSet};
use proto::authz::v1::IntrospectRequest;
use proto::authz::v1::introspection_client::IntrospectionClient;
use reqwest::StatusCode;
use serde_json::{Value, json};
use storage::Database;
use storage::testing::TestDatabase;

use crate::flow_env::*;

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";
const DOWNSTREAM: &str = "https://downstream.example.test";
const LEDGER: &str = "urn:example:ledger";

type Answer = (StatusCode, reqwest::header::HeaderMap, Value);

/// Registers the exchanging clients:
/// - `gateway`: JWT tokens, may exchange for [`DOWNSTREAM`] and [`LEDGER`] with at most
///   `api:read profile`, never without an actor token;
/// - `broker`: opaque tokens, may exchange for [`LEDGER`] with `api:read`, and may
///   impersonate.
async fn exchangers(db: &TestDatabase, env: &Env) {
    let pool = Database::connect(db.config(), &authz::MIGRATIONS)
        .await
        .unwrap();
    let clients = Clients::new(pool, Arc::new(env.clock.clone()), Duration::ZERO);
    for (id, format, audiences, scopes, impersonate) in [
        (
            "gateway",
            AccessTokenFormat::Jwt,
            vec![DOWNSTREAM, LEDGER],
            "api:read profile",
            false,
        ),
        (
            "broker",
            AccessTokenFormat::Opaque,
            vec![LEDGER],
            "api:read",
            true,
        ),
    ] {
        let mut c = client(id);
        c.grant_types = vec![GrantType::ClientCredentials, GrantType::TokenExchange];
        c.scopes = ScopeSet::default();
        c.access_token_format = format;
        c.token_exchange = TokenExchangePolicy {
            audiences: audiences.into_iter().map(str::to_owned).collect(),
            scopes: ScopeSet::parse(scopes).unwrap(),
            impersonate,
        };
        clients
            .create(NewClient {
                client: c,
                secret: Some(SECRET.to_owned()),
            })
            .await
            .unwrap();
    }
}

/// alice's access token from `web` with `openid profile api:read`.
async fn user_token(env: &Env) -> (String, String) {
    let mut browser = Browser::new(env);
    let (code, verifier) = env
        .sign_in(
            &mut browser,
            "web",
            "openid profile api:read",
            "alice",
            "idp-a",
        )
        .await;
    let (status, _, body) = env.redeem("web", &code, &verifier).await;
    assert_eq!(status, 200, "{body}");
    (
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

/// A `client_credentials` token of `id` (the actor token of a delegation).
async fn own_token(env: &Env, id: &str) -> String {
    let (status, _, body) = env
        .token(Some((id, SECRET)), &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

async fn exchange(env: &Env, id: &str, form: &[(&str, &str)]) -> Answer {
    let mut all = vec![("grant_type", EXCHANGE)];
    all.extend_from_slice(form);
    env.token(Some((id, SECRET)), &all).await
}

fn refused(answer: &Answer, code: &str, case: &str) {
    let (status, headers, body) = answer;
    assert_eq!(status.as_u16(), 400, "{case}: {body}");
    assert_eq!(body["error"], code, "{case}: {body}");
    assert_eq!(headers["cache-control"], "no-store", "{case}");
}

async fn introspect(env: &Env, token: &str, hint: Option<&str>) -> Value {
    let mut form = vec![("token", token)];
    if let Some(h) = hint {
        form.push(("token_type_hint", h));
    }
    let res = env
        .http
        .post(format!("http://{}/introspect", env.addrs.http))
        .header("authorization", basic("rs", SECRET))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

async fn introspect_grpc(env: &Env, token: &str) -> proto::authz::v1::IntrospectResponse {
    let channel =
        tonic::transport::Endpoint::from_shared(format!("http://{}", env.addrs.grpc.unwrap()))
            .unwrap()
            .connect()
            .await
            .unwrap();
    IntrospectionClient::new(channel)
        .introspect(as_client(
            IntrospectRequest {
                token: token.to_owned(),
                token_type_hint: String::new(),
            },
            Some(("rs", SECRET)),
        ))
        .await
        .unwrap()
        .into_inner()
}

async fn delegation_down_scoping_and_the_act_chain(db: TestDatabase) {
    let env = start(&db).await;
    exchangers(&db, &env).await;
    let (subject, _) = user_token(&env).await;
    let actor = own_token(&env, "gateway").await;

    // Delegation: rs-style gateway exchanges alice's token for the downstream audience.
    let (status, headers, body) = exchange(
        &env,
        "gateway",
        &[
            ("subject_token", &subject),
            ("subject_token_type", ACCESS),
            ("actor_token", &actor),
            ("actor_token_type", ACCESS),
            ("audience", DOWNSTREAM),
            ("scope", "api:read"),
            ("requested_token_type", ACCESS),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(body["issued_token_type"], ACCESS);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "api:read");
    assert!(body.get("refresh_token").is_none(), "{body}");
    let exchanged = body["access_token"].as_str().unwrap().to_owned();
    let keys = env.verifiers().await;
    let claims = verify(&keys, &exchanged, "at+jwt");
    let original = verify(&keys, &subject, "at+jwt");
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["client_id"], "gateway");
    assert_eq!(claims["aud"], json!([DOWNSTREAM]));
    assert_eq!(claims["act"], json!({"sub": "gateway"}));
    assert!(claims["exp"].as_i64() <= original["exp"].as_i64());

    // Introspection shows the actor, over HTTP and gRPC.
    let info = introspect(&env, &exchanged, None).await;
    assert_eq!(info["active"], true, "{info}");
    assert_eq!(info["act"], json!({"sub": "gateway"}));
    assert_eq!(info["client_id"], "gateway");
    let g = introspect_grpc(&env, &exchanged).await;
    assert!(g.active);
    assert_eq!(g.act.as_ref().map(|a| a.sub.as_str()), Some("gateway"));
    assert!(g.act.unwrap().act.is_none());

    // Without scope: what the subject has and the policy allows (down-scoping only).
    let (status, _, body) = exchange(
        &env,
        "gateway",
        &[
            ("subject_token", &subject),
            ("subject_token_type", "urn:ietf:params:oauth:token-type:jwt"),
            ("actor_token", &actor),
            ("actor_token_type", ACCESS),
            ("resource", LEDGER),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "api:read profile");

    // A second hop: broker (opaque tokens) exchanges the exchanged token; the prior actor
    // is nested inside the new one (RFC 8693 §4.1).
    let broker = own_token(&env, "broker").await;
    let (status, _, body) = exchange(
        &env,
        "broker",
        &[
            ("subject_token", &exchanged),
            ("subject_token_type", ACCESS),
            ("actor_token", &broker),
            ("actor_token_type", ACCESS),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let opaque = body["access_token"].as_str().unwrap().to_owned();
    assert!(!opaque.contains('.'), "broker's tokens are opaque");
    let info = introspect(&env, &opaque, None).await;
    assert_eq!(info["active"], true, "{info}");
    assert_eq!(info["sub"], "alice");
    assert_eq!(
        info["aud"],
        json!([LEDGER]),
        "the policy's default audience"
    );
    assert_eq!(info["scope"], "api:read");
    assert_eq!(
        info["act"],
        json!({"sub": "broker", "act": {"sub": "gateway"}})
    );
    let g = introspect_grpc(&env, &opaque).await;
    let act = g.act.unwrap();
    assert_eq!(act.sub, "broker");
    assert_eq!(act.act.unwrap().sub, "gateway");

    // Impersonation where allowed: no new actor, the subject's chain is kept.
    let (status, _, body) = exchange(
        &env,
        "broker",
        &[("subject_token", &subject), ("subject_token_type", ACCESS)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let info = introspect(&env, body["access_token"].as_str().unwrap(), None).await;
    assert_eq!(info["active"], true, "{info}");
    assert!(info.get("act").is_none(), "{info}");

    // Discovery lists the grant (RFC 8414 §2).
    let doc: Value = env
        .http
        .get(format!(
            "http://{}/.well-known/openid-configuration",
            env.addrs.http
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        doc["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!(EXCHANGE))
    );
}

async fn every_bad_exchange_is_refused_with_the_rfc_8693_code(db: TestDatabase) {
    let env = start(&db).await;
    exchangers(&db, &env).await;
    let (subject, refresh) = user_token(&env).await;
    let actor = own_token(&env, "gateway").await;
    let good = |extra: &[(&'static str, &'static str)]| {
        let mut form: Vec<(&str, String)> = vec![
            ("subject_token", subject.clone()),
            ("subject_token_type", ACCESS.to_owned()),
            ("actor_token", actor.clone()),
            ("actor_token_type", ACCESS.to_owned()),
            ("audience", DOWNSTREAM.to_owned()),
        ];
        for (k, v) in extra {
            form.retain(|(name, _)| name != k);
            if !v.is_empty() {
                form.push((*k, (*v).to_owned()));
            }
        }
        form
    };
    let send = |form: Vec<(&'static str, String)>, id: &'static str| {
        let env = &env;
        async move {
            let borrowed: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            exchange(env, id, &borrowed).await
        }
    };

    // Malformed or unsupported parameters: invalid_request (RFC 8693 §2.2.2).
    for (case, form) in [
        ("no subject_token", good(&[("subject_token", "")])),
        ("no subject_token_type", good(&[("subject_token_type", "")])),
        (
            "refresh token as subject type",
            good(&[(
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:refresh_token",
            )]),
        ),
        (
            "actor_token without its type",
            good(&[("actor_token_type", "")]),
        ),
        (
            "actor_token_type without actor_token",
            good(&[("actor_token", "")]),
        ),
        (
            "an ID token requested",
            good(&[(
                "requested_token_type",
                "urn:ietf:params:oauth:token-type:id_token",
            )]),
        ),
    ] {
        refused(&send(form, "gateway").await, "invalid_request", case);
    }

    // Subject tokens that are not our live access tokens: invalid_request.
    let foreign = {
        let key = issuer::PrivateKey::generate(issuer::Algorithm::ES256, 2048).unwrap();
        let signer = issuer::jws::Signer::new(&key).unwrap();
        let mut claims = verify(&env.verifiers().await, &subject, "at+jwt");
        claims.insert("iss".into(), json!("https://other-issuer.example.test"));
        signer.sign_jwt("at+jwt", &claims).unwrap()
    };
    let forged_ours = {
        let key = issuer::PrivateKey::generate(issuer::Algorithm::ES256, 2048).unwrap();
        let signer = issuer::jws::Signer::new(&key).unwrap();
        let claims = verify(&env.verifiers().await, &subject, "at+jwt");
        signer.sign_jwt("at+jwt", &claims).unwrap()
    };
    for (case, token) in [
        ("another issuer's token", foreign.as_str()),
        (
            "our claims under a key we never published",
            forged_ours.as_str(),
        ),
        ("garbage", "not-a-token"),
        ("a refresh token as access token", refresh.as_str()),
    ] {
        let mut form = good(&[]);
        form.retain(|(k, _)| *k != "subject_token");
        form.push(("subject_token", token.to_owned()));
        refused(&send(form, "gateway").await, "invalid_request", case);
    }

    // Actor tokens: invalid, or not the requesting client's.
    let m2m = own_token(&env, "m2m").await;
    for (case, token) in [
        ("garbage actor", "nope"),
        ("another client's actor", m2m.as_str()),
    ] {
        let mut form = good(&[]);
        form.retain(|(k, _)| *k != "actor_token");
        form.push(("actor_token", token.to_owned()));
        refused(&send(form, "gateway").await, "invalid_request", case);
    }

    // Impersonation is refused unless the policy allows it.
    refused(
        &send(
            good(&[("actor_token", ""), ("actor_token_type", "")]),
            "gateway",
        )
        .await,
        "invalid_request",
        "impersonation not allowed",
    );

    // Audiences outside the policy: invalid_target.
    for (case, form) in [
        (
            "audience not allowed",
            good(&[("audience", "https://payroll.example.test")]),
        ),
        (
            "resource not allowed",
            good(&[
                ("audience", ""),
                ("resource", "https://payroll.example.test"),
            ]),
        ),
        (
            "resource not an absolute URI",
            good(&[("audience", ""), ("resource", "/relative")]),
        ),
    ] {
        refused(&send(form, "gateway").await, "invalid_target", case);
    }

    // Up-scoping: more than the subject token had, or than the policy allows.
    refused(
        &send(good(&[("scope", "api:read email")]), "gateway").await,
        "invalid_scope",
        "a scope the subject token lacks",
    );
    refused(
        &send(good(&[("scope", "openid")]), "gateway").await,
        "invalid_scope",
        "a scope the policy does not allow",
    );

    // A client without the grant type.
    refused(
        &send(good(&[]), "m2m").await,
        "unauthorized_client",
        "grant type not allowed",
    );

    // Still good before the subject token is revoked and expires.
    let (status, _, body) = send(good(&[]), "gateway").await;
    assert_eq!(status, 200, "{body}");

    // A revoked subject token.
    let res = env
        .http
        .post(format!("http://{}/revoke", env.addrs.http))
        .header("authorization", basic("web", SECRET))
        .form(&[("token", subject.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    refused(
        &send(good(&[]), "gateway").await,
        "invalid_request",
        "revoked subject token",
    );

    // An expired subject token.
    let (fresh, _) = user_token(&env).await;
    env.clock.advance(601);
    let mut form = good(&[]);
    form.retain(|(k, _)| *k != "subject_token" && *k != "actor_token");
    let actor = own_token(&env, "gateway").await;
    form.push(("subject_token", fresh));
    form.push(("actor_token", actor));
    refused(
        &send(form, "gateway").await,
        "invalid_request",
        "expired subject token",
    );
}

async fn refresh_tokens_are_introspected_while_live(db: TestDatabase) {
    let env = start(&db).await;
    let (access, refresh) = user_token(&env).await;
    let now = env.now();
    for hint in [None, Some("refresh_token"), Some("access_token")] {
        let info = introspect(&env, &refresh, hint).await;
        assert_eq!(info["active"], true, "{hint:?}: {info}");
        assert_eq!(info["scope"], "api:read openid profile");
        assert_eq!(info["client_id"], "web");
        assert_eq!(info["sub"], "alice");
        assert_eq!(info["iss"], ISSUER);
        assert_eq!(info["token_type"], "refresh_token");
        assert_eq!(info["iat"], now);
        assert_eq!(info["exp"], now + 3600);
        assert!(info.get("aud").is_none(), "{info}");
    }
    let g = introspect_grpc(&env, &refresh).await;
    assert!(g.active);
    assert_eq!(
        (g.client_id.as_str(), g.sub.as_str(), g.token_type.as_str()),
        ("web", "alice", "refresh_token")
    );
    assert!(g.aud.is_empty());

    // A caller not allowed to introspect learns nothing.
    let res = env
        .http
        .post(format!("http://{}/introspect", env.addrs.http))
        .header("authorization", basic("web", SECRET))
        .form(&[("token", refresh.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    // Rotated: inactive; its successor is live.
    let (status, _, body) = env.refresh("web", &refresh).await;
    assert_eq!(status, 200, "{body}");
    let next = body["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(
        introspect(&env, &refresh, None).await,
        json!({"active": false})
    );
    assert!(!introspect_grpc(&env, &refresh).await.active);
    assert_eq!(introspect(&env, &next, None).await["active"], true);

    // Another client cannot revoke it: refused, and it stays active (RFC 7009 §2.1).
    let res = env
        .http
        .post(format!("http://{}/revoke", env.addrs.http))
        .header("authorization", basic("intruder", SECRET))
        .form(&[
            ("token", next.as_str()),
            ("token_type_hint", "refresh_token"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized_client", "{body}");
    assert_eq!(introspect(&env, &next, None).await["active"], true);
    assert!(env.active(&access).await);

    // Revoked by its client: inactive on both transports.
    let res = env
        .http
        .post(format!("http://{}/revoke", env.addrs.http))
        .header("authorization", basic("web", SECRET))
        .form(&[("token", next.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        introspect(&env, &next, None).await,
        json!({"active": false})
    );
    assert!(!introspect_grpc(&env, &next).await.active);

    // Expired: inactive.
    let (_, later) = user_token(&env).await;
    assert_eq!(introspect(&env, &later, None).await["active"], true);
    env.clock.advance(3600);
    assert_eq!(introspect(&env, &later, None).await["active"], false);
}

storage::backend_tests!(
    authz::MIGRATIONS;
    delegation_down_scoping_and_the_act_chain,
    every_bad_exchange_is_refused_with_the_rfc_8693_code,
    refresh_tokens_are_introspected_while_live,
);
