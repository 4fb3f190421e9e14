//! Holes an abusive client found on the wire (issue 14): oversized bodies on the OAuth
//! endpoints, `/userinfo` with a client's own token, and RP-Initiated Logout with a
//! leaked `id_token_hint` but without the victim's browser, and gRPC messages that are
//! not protobuf.

use reqwest::StatusCode;
use serde_json::Value;
use storage::testing::TestDatabase;

use crate::flow_env::*;

/// Over the form limit, every OAuth endpoint answers 413 with the RFC 6749 §5.2 JSON
/// error, never cached.
async fn oversized_bodies_get_the_oauth_error_shape(db: TestDatabase) {
    let env = start(&db).await;
    let big = format!(
        "grant_type=client_credentials&pad={}",
        "a".repeat(64 * 1024)
    );
    for path in ["/token", "/introspect", "/revoke", "/userinfo"] {
        let url = format!("http://{}{path}", env.addrs.http);
        let res = env
            .http
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("authorization", basic("m2m", SECRET))
            .body(big.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        assert_eq!(res.headers()["cache-control"], "no-store", "{path}");
        assert_eq!(res.headers()["content-type"], "application/json", "{path}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "error": "invalid_request",
                "error_description": "request body too large",
            }),
            "{path}"
        );
    }
    // Under the limit nothing changes.
    let (status, _, body) = env
        .token(
            Some(("m2m", SECRET)),
            &[("grant_type", "client_credentials"), ("scope", "api:read")],
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

/// `/userinfo` (OpenID Connect Core §5.3) serves only tokens of an OpenID Connect
/// authentication: a client_credentials token never carries `openid`, even when its
/// client may use `openid` and a user's subject equals its `client_id`.
async fn userinfo_refuses_a_clients_own_token(db: TestDatabase) {
    let env = start(&db).await;
    env.idp.user("m2m", false);
    // No scope asked: the client's scopes, less openid.
    let (status, _, body) = env
        .token(
            Some(("m2m", SECRET)),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let scope = body["scope"].as_str().unwrap();
    assert!(!scope.split(' ').any(|s| s == "openid"), "{scope}");
    assert!(scope.split(' ').any(|s| s == "api:read"), "{scope}");
    let (status, headers, info) = env.userinfo(body["access_token"].as_str().unwrap()).await;
    assert_eq!(status, 403, "{info}");
    assert_eq!(info["error"], "insufficient_scope");
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains(r#"error="insufficient_scope""#)
    );
    assert!(info.get("email").is_none());
    // Asked for: refused.
    let (status, _, body) = env
        .token(
            Some(("m2m", SECRET)),
            &[
                ("grant_type", "client_credentials"),
                ("scope", "openid api:read"),
            ],
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_scope");
}

fn end_session_query(hint: &str) -> String {
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("id_token_hint", hint),
            ("post_logout_redirect_uri", WEB_BYE),
            ("state", "s9"),
        ])
        .finish();
    format!("/end_session?{q}")
}

/// RP-Initiated Logout 1.0 §2: a valid `id_token_hint` from a browser without the
/// victim's session cookie is a question, not a logout; only the browser holding the
/// session the hint names signs out without one.
async fn a_leaked_id_token_hint_does_not_end_the_session(db: TestDatabase) {
    let env = start(&db).await;
    let mut victim = Browser::new(&env);
    let (code, verifier) = env
        .sign_in(&mut victim, "first", "openid", "alice", "idp-a")
        .await;
    let (_, _, body) = env.redeem("first", &code, &verifier).await;
    let hint = body["id_token"].as_str().unwrap().to_owned();

    // Another browser (or a link followed without cookies), by GET and by POST.
    let mut stranger = Browser::new(&env);
    let seen = stranger.get(&end_session_query(&hint)).await;
    assert_eq!(seen.status, 200, "{seen:?}");
    assert!(seen.body.contains("Sign out?"), "{}", seen.body);
    assert!(seen.body.contains("<form"), "{}", seen.body);
    let seen = stranger
        .post(
            "/end_session",
            &[("id_token_hint", hint.as_str()), ("client_id", "first")],
        )
        .await;
    assert!(seen.body.contains("Sign out?"), "{}", seen.body);
    // Answering the question from there ends nothing either.
    let seen = stranger
        .post(
            "/end_session",
            &[
                ("id_token_hint", hint.as_str()),
                ("confirm", "yes"),
                ("csrf", ""),
                ("post_logout_redirect_uri", WEB_BYE),
            ],
        )
        .await;
    assert_eq!(seen.status, StatusCode::SEE_OTHER, "{seen:?}");
    assert!(env.idp.ended().is_empty());

    // The victim is still signed in: prompt=none still gets a code.
    let (_, c) = pkce();
    let seen = victim
        .authorize(&code_request(
            "first",
            WEB_CB,
            "openid",
            &c,
            &[("prompt", "none")],
        ))
        .await;
    assert!(seen.redirected_to(WEB_CB).contains_key("code"), "{seen:?}");

    // The victim's own browser with the hint: signed out without a question, as before.
    let seen = victim.get(&end_session_query(&hint)).await;
    assert_eq!(seen.redirected_to(WEB_BYE)["state"], "s9");
    assert_eq!(env.idp.ended(), vec!["idp-a".to_owned()]);
    assert!(!victim.jar.contains_key("authz_session"));
}

/// Raw bytes on the wire: what a client sends when it does not speak protobuf.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

struct RawEncoder;
struct RawDecoder;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

impl tonic::codec::Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        prost::bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawDecoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, tonic::Status> {
        let n = prost::bytes::Buf::remaining(src);
        Ok(Some(prost::bytes::Buf::copy_to_bytes(src, n).to_vec()))
    }
}

/// A message that is not protobuf (a truncated varint key) is the caller's mistake:
/// `INVALID_ARGUMENT` on LoginFlow and Introspection, with or without credentials, never
/// `INTERNAL`, and nothing of the decoder's message.
async fn undecodable_grpc_requests_are_invalid_argument(db: TestDatabase) {
    let env = start(&db).await;
    let channel =
        tonic::transport::Endpoint::from_shared(format!("http://{}", env.addrs.grpc.unwrap()))
            .unwrap()
            .connect()
            .await
            .unwrap();
    for path in [
        "/authz.v1.LoginFlow/GetLoginRequest",
        "/authz.v1.Introspection/Introspect",
    ] {
        for auth in [None, Some(("rs", SECRET))] {
            let mut grpc = tonic::client::Grpc::new(channel.clone());
            grpc.ready().await.unwrap();
            let status = grpc
                .unary(
                    as_client(vec![0xff_u8, 0xff, 0xff], auth),
                    tonic::codegen::http::uri::PathAndQuery::from_static(path),
                    RawCodec,
                )
                .await
                .unwrap_err();
            assert_eq!(
                status.code(),
                tonic::Code::InvalidArgument,
                "{path} {auth:?}: {status:?}"
            );
            assert!(!status.message().contains("decode"), "{status:?}");
        }
    }
    // A well-formed request still reaches the handler.
    let status = env.get_login("no-such-challenge").await.unwrap_err();
    assert_ne!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
}

storage::backend_tests!(
    authz::MIGRATIONS;
    oversized_bodies_get_the_oauth_error_shape,
    userinfo_refuses_a_clients_own_token,
    a_leaked_id_token_hint_does_not_end_the_session,
    undecodable_grpc_requests_are_invalid_argument,
);
