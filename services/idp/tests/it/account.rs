//! The account page (`/account`) against the fake authz, on SQLite and PostgreSQL: every
//! form, signed-out browsers, CSRF, the claims authz reads afterwards, and the durable
//! revocation of a deleted account's grants while authz is down.

use std::time::Duration;

use proto::idp::v1::GetUserClaimsRequest;
use storage::testing::TestDatabase;

use crate::fake_authz::{Call, FakeAuthz};
use crate::harness::{Browser, Idp, PASSWORD, Page, authz, start};

/// Every form of the page, as `(path, fields besides csrf)`.
const FORMS: [(&str, &[(&str, &str)]); 8] = [
    ("/account/email", &[("email", "mallory@example.com")]),
    ("/account/avatar/delete", &[]),
    ("/account/profile", &[("name", "Mallory")]),
    ("/account/username", &[("username", "mallory")]),
    (
        "/account/password",
        &[
            ("current", PASSWORD),
            ("new", "mallory's password"),
            ("confirm", "mallory's password"),
        ],
    ),
    ("/account/sessions", &[]),
    ("/account/apps/revoke", &[("client_id", "demo-app")]),
    ("/account/delete", &[("password", PASSWORD)]),
];

/// The CSRF token of the form posting to `action` on `page`.
fn token(page: &Page, action: &str) -> String {
    let at = page
        .body
        .find(&format!(r#"action="{action}""#))
        .unwrap_or_else(|| panic!("no form {action} in {}", page.body));
    let marker = r#"name="csrf" value=""#;
    let start = page.body[at..].find(marker).unwrap() + at + marker.len();
    let end = page.body[start..].find('"').unwrap() + start;
    page.body[start..end].to_owned()
}

/// A browser signed in as `username` through `/account/login`.
pub(crate) async fn signed_in(idp: &Idp, username: &str, password: &str) -> Browser {
    let mut browser = Browser::new(idp);
    let form = browser.get("/account/login").await;
    assert_eq!(form.status, 200, "{}", form.body);
    let csrf = form.hidden("csrf");
    let done = browser
        .post(
            "/account/login",
            &[
                ("csrf", &csrf),
                ("username", username),
                ("password", password),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location.as_deref(), Some("/account?done=signed-in"));
    browser
}

/// GET /account (200) and post `fields` to `action` with that form's token.
pub(crate) async fn submit(browser: &mut Browser, action: &str, fields: &[(&str, &str)]) -> Page {
    let page = browser.get("/account").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = token(&page, action);
    let mut all = vec![("csrf", csrf.as_str())];
    all.extend_from_slice(fields);
    browser.post(action, &all).await
}

async fn claims(idp: &Idp, subject: &str) -> proto::idp::v1::UserClaims {
    idp.sessions_api()
        .await
        .get_user_claims(authz(GetUserClaimsRequest {
            subject: subject.into(),
            scopes: vec!["openid".into(), "profile".into(), "email".into()],
        }))
        .await
        .unwrap()
        .into_inner()
}

fn session_ended_calls(fake: &FakeAuthz) -> usize {
    fake.calls()
        .iter()
        .filter(|c| matches!(c, Call::SessionEnded(_)))
        .count()
}

async fn signed_out_browsers_get_a_redirect_never_data(db: TestDatabase) {
    let idp = start(db, |_| {}).await;
    let alice = idp.user("alice").await;
    let mut browser = Browser::new(&idp);
    let page = browser.get("/account").await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location.as_deref(), Some("/account/login"));
    assert!(!page.body.contains("alice"), "{}", page.body);
    // A signed-out browser with a CSRF cookie and some token is sent to sign in; nothing of
    // the account shows and nothing changes.
    let form = browser.get("/account/login").await;
    let csrf = form.hidden("csrf");
    for (path, fields) in FORMS {
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        let answer = browser.post(path, &all).await;
        assert_eq!(answer.status, 303, "{path}: {}", answer.body);
        assert_eq!(answer.location.as_deref(), Some("/account/login"), "{path}");
        assert!(!answer.body.contains("alice"), "{path}");
    }
    // Signed in, the sign-in page itself forwards to the account page.
    let mut signed = signed_in(&idp, "alice", PASSWORD).await;
    let again = signed.get("/account/login").await;
    assert_eq!(again.status, 303);
    assert_eq!(again.location.as_deref(), Some("/account"));
    let page = signed.get("/account").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains(r#"id="account-username">alice<"#),
        "{}",
        page.body
    );
    assert_eq!(page.headers["cache-control"], "no-store");
    // Wrong password at the account sign-in: the one failure message, no session.
    let mut other = Browser::new(&idp);
    let form = other.get("/account/login").await;
    let csrf = form.hidden("csrf");
    let failed = other
        .post(
            "/account/login",
            &[
                ("csrf", &csrf),
                ("username", "alice"),
                ("password", "wrong password"),
            ],
        )
        .await;
    assert_eq!(failed.status, 200);
    assert!(failed.body.contains("Incorrect username or password."));
    assert_eq!(other.get("/account").await.status, 303);
    assert!(idp.users.by_id(&alice.id).await.unwrap().is_some());
}

async fn every_form_refuses_a_missing_or_foreign_csrf_token(db: TestDatabase) {
    let idp = start(db, |_| {}).await;
    let alice = idp.user("alice").await;
    idp.authz
        .remember(&alice.id, "demo-app", "Demo App", &["openid"]);
    let mut browser = signed_in(&idp, "alice", PASSWORD).await;
    let page = browser.get("/account").await;
    // The profile form's token, valid for that form only.
    let profile_token = token(&page, "/account/profile");
    for (path, fields) in FORMS {
        let missing = browser.post(path, fields).await;
        assert_eq!(missing.status, 403, "{path} without a token");
        if path != "/account/profile" {
            let mut all = vec![("csrf", profile_token.as_str())];
            all.extend_from_slice(fields);
            let foreign = browser.post(path, &all).await;
            assert_eq!(foreign.status, 403, "{path} with another form's token");
        }
    }
    // The sign-in form too.
    let mut fresh = Browser::new(&idp);
    fresh.get("/account/login").await;
    let forged = fresh
        .post(
            "/account/login",
            &[("username", "alice"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(forged.status, 403);
    // Nothing changed.
    let now = idp.users.by_id(&alice.id).await.unwrap().unwrap();
    assert_eq!(now, alice);
    assert!(!idp.authz.calls().iter().any(|c| matches!(
        c,
        Call::RevokeConsent(_) | Call::RevokeSubject(_) | Call::SessionEnded(_)
    )));
    assert_eq!(browser.get("/account").await.status, 200, "still signed in");
}

async fn profile_changes_reach_the_claims_at_once(db: TestDatabase) {
    let idp = start(db, |_| {}).await;
    let alice = idp.user("alice").await;
    let before = claims(&idp, &alice.id).await;
    assert_eq!(before.name.as_deref(), Some("alice Example"));
    let mut browser = signed_in(&idp, "alice", PASSWORD).await;
    let saved = submit(
        &mut browser,
        "/account/profile",
        &[
            ("name", "Alice Liddell"),
            ("given_name", "Alice"),
            ("family_name", ""),
            ("locale", "fr_CA"),
        ],
    )
    .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    assert_eq!(saved.location.as_deref(), Some("/account?done=profile"));
    let after = claims(&idp, &alice.id).await;
    assert_eq!(after.name.as_deref(), Some("Alice Liddell"));
    assert_eq!(after.given_name.as_deref(), Some("Alice"));
    assert_eq!(after.family_name, None, "an empty field removes the claim");
    assert_eq!(after.locale.as_deref(), Some("fr-CA"));
    assert!(after.updated_at >= before.updated_at);
    let page = browser.get("/account?done=profile").await;
    assert!(page.body.contains("Your profile is saved."));
    assert!(page.body.contains(r#"value="Alice Liddell""#));
    // Bad input: the page again with the reason, nothing stored.
    for (field, value) in [("locale", "not a locale"), ("name", "bell\u{7}")] {
        let refused = submit(&mut browser, "/account/profile", &[(field, value)]).await;
        assert_eq!(refused.status, 400, "{field}");
        assert!(
            refused.body.contains(r#"id="account-error""#),
            "{}",
            refused.body
        );
    }
    assert_eq!(
        claims(&idp, &alice.id).await.name.as_deref(),
        Some("Alice Liddell")
    );
}

async fn usernames_are_unique_validated_and_held_after_a_change(db: TestDatabase) {
    let idp = start(db, |_| {}).await;
    let alice = idp.user("alice").await;
    idp.user("bob").await;
    let mut browser = signed_in(&idp, "alice", PASSWORD).await;
    for (taken, why) in [
        ("bob", "another user's username"),
        ("BOB", "the same name in other case"),
        ("bob@example.com", "another user's email"),
    ] {
        let refused = submit(&mut browser, "/account/username", &[("username", taken)]).await;
        assert_eq!(refused.status, 409, "{why}: {}", refused.body);
        assert!(refused.body.contains("That username is not available."));
    }
    for invalid in ["", "has space", &"x".repeat(65), "<script>"] {
        let refused = submit(&mut browser, "/account/username", &[("username", invalid)]).await;
        assert_eq!(refused.status, 400, "{invalid:?}");
    }
    assert_eq!(idp.users.get(&alice.id).await.unwrap().username, "alice");
    let changed = submit(&mut browser, "/account/username", &[("username", "Alice2")]).await;
    assert_eq!(changed.status, 303, "{}", changed.body);
    assert_eq!(idp.users.get(&alice.id).await.unwrap().username, "alice2");
    assert_eq!(
        claims(&idp, &alice.id).await.preferred_username.as_deref(),
        Some("alice2")
    );
    // The old name is held for alice: bob cannot take it, nor can a new account.
    let mut bob = signed_in(&idp, "bob", PASSWORD).await;
    let refused = submit(&mut bob, "/account/username", &[("username", "alice")]).await;
    assert_eq!(refused.status, 409);
    let created = idp
        .users
        .create(
            idp::users::NewUser {
                username: "alice".into(),
                profile: idp::users::Profile::default(),
            },
            PASSWORD.into(),
        )
        .await;
    assert!(
        matches!(created, Err(idp::IdpError::Conflict(_))),
        "{created:?}"
    );
    // alice signs in with the new name and may take the old one back.
    let mut again = signed_in(&idp, "alice2", PASSWORD).await;
    let back = submit(&mut again, "/account/username", &[("username", "alice")]).await;
    assert_eq!(back.status, 303);
    assert_eq!(idp.users.get(&alice.id).await.unwrap().username, "alice");
}

async fn a_password_change_needs_the_current_one_and_ends_other_sessions(db: TestDatabase) {
    let idp = start(db, |_| {}).await;
    let alice = idp.user("alice").await;
    let mut here = signed_in(&idp, "alice", PASSWORD).await;
    let mut there = signed_in(&idp, "alice", PASSWORD).await;
    let wrong = submit(
        &mut here,
        "/account/password",
        &[
            ("current", "not my password"),
            ("new", "a new password"),
            ("confirm", "a new password"),
        ],
    )
    .await;
    assert_eq!(wrong.status, 403);
    assert!(wrong.body.contains("The current password is not correct."));
    let differ = submit(
        &mut here,
        "/account/password",
        &[
            ("current", PASSWORD),
            ("new", "a new password"),
            ("confirm", "another password"),
        ],
    )
    .await;
    assert_eq!(differ.status, 400);
    let short = submit(
        &mut here,
        "/account/password",
        &[
            ("current", PASSWORD),
            ("new", "short"),
            ("confirm", "short"),
        ],
    )
    .await;
    assert_eq!(short.status, 400);
    assert_eq!(
        there.get("/account").await.status,
        200,
        "nothing changed yet"
    );
    assert_eq!(session_ended_calls(&idp.authz), 0);
    let changed = submit(
        &mut here,
        "/account/password",
        &[
            ("current", PASSWORD),
            ("new", "a new password"),
            ("confirm", "a new password"),
        ],
    )
    .await;
    assert_eq!(changed.status, 303, "{}", changed.body);
    assert_eq!(here.get("/account").await.status, 200, "this session stays");
    let gone = there.get("/account").await;
    assert_eq!(gone.status, 303, "the other session ended");
    assert_eq!(session_ended_calls(&idp.authz), 1, "authz is told");
    assert!(
        idp.users
            .authenticate("alice", "a new password".into())
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        idp.users
            .authenticate("alice", PASSWORD.into())
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(alice.id, idp.users.get("alice").await.unwrap().id);
}

async fn other_sessions_end_on_request(db: TestDatabase) {
    let idp = start(db, |_| {}).await;
    idp.user("alice").await;
    let mut here = signed_in(&idp, "alice", PASSWORD).await;
    let mut there = signed_in(&idp, "alice", PASSWORD).await;
    let page = here.get("/account").await;
    assert_eq!(page.body.matches(r#"<tr class="session">"#).count(), 2);
    assert!(page.body.contains("this browser"));
    let ended = submit(&mut here, "/account/sessions", &[]).await;
    assert_eq!(ended.status, 303);
    assert_eq!(ended.location.as_deref(), Some("/account?done=sessions"));
    assert_eq!(there.get("/account").await.status, 303);
    let page = here.get("/account").await;
    assert_eq!(page.status, 200);
    assert_eq!(page.body.matches(r#"<tr class="session">"#).count(), 1);
    assert_eq!(session_ended_calls(&idp.authz), 1);
}

async fn apps_with_remembered_consent_are_listed_and_revoked_at_authz(db: TestDatabase) {
    let idp = start(db, |_| {}).await;
    let alice = idp.user("alice").await;
    idp.authz
        .remember(&alice.id, "demo-app", "Demo App", &["openid", "profile"]);
    idp.authz.remember(&alice.id, "other-app", "", &["openid"]);
    let mut browser = signed_in(&idp, "alice", PASSWORD).await;
    let page = browser.get("/account").await;
    assert_eq!(
        page.body.matches(r#"<tr class="app">"#).count(),
        2,
        "{}",
        page.body
    );
    assert!(page.body.contains("Demo App"));
    assert!(
        page.body.contains("other-app"),
        "the id when there is no name"
    );
    let revoked = submit(
        &mut browser,
        "/account/apps/revoke",
        &[("client_id", "demo-app")],
    )
    .await;
    assert_eq!(revoked.status, 303, "{}", revoked.body);
    assert!(idp.authz.calls().iter().any(|c| matches!(
        c,
        Call::RevokeConsent(r) if r.subject == alice.id && r.client_id == "demo-app"
    )));
    let page = browser.get("/account").await;
    assert_eq!(page.body.matches(r#"<tr class="app">"#).count(), 1);
    assert!(!page.body.contains("Demo App"));
    let empty = submit(&mut browser, "/account/apps/revoke", &[("client_id", "  ")]).await;
    assert_eq!(empty.status, 400);
}

async fn deletion_needs_re_authentication_then_removes_everything(db: TestDatabase) {
    let idp = start(db, |_| {}).await;
    let alice = idp.user("alice").await;
    let mut browser = signed_in(&idp, "alice", PASSWORD).await;
    let mut other = signed_in(&idp, "alice", PASSWORD).await;
    for password in ["", "not my password"] {
        let refused = submit(&mut browser, "/account/delete", &[("password", password)]).await;
        assert_eq!(refused.status, 403, "{password:?}");
        assert!(idp.users.by_id(&alice.id).await.unwrap().is_some());
    }
    assert!(
        !idp.authz
            .calls()
            .iter()
            .any(|c| matches!(c, Call::RevokeSubject(_)))
    );
    let deleted = submit(&mut browser, "/account/delete", &[("password", PASSWORD)]).await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert!(deleted.body.contains(r#"id="account-deleted""#));
    assert!(
        deleted
            .set_cookie("idp_session")
            .is_some_and(|c| c.contains("Max-Age=0")),
        "{:?}",
        deleted.set_cookies
    );
    assert!(idp.users.by_id(&alice.id).await.unwrap().is_none());
    assert!(idp.authz.calls().iter().any(|c| matches!(
        c,
        Call::RevokeSubject(r) if r.subject == alice.id
    )));
    assert_eq!(
        other.get("/account").await.status,
        303,
        "every session is gone"
    );
    assert!(
        idp.users
            .authenticate("alice", PASSWORD.into())
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(idp.metric("idp_revocations_pending").await, 0.0);
}

async fn a_deletion_while_authz_is_down_is_revoked_once_it_is_back(db: TestDatabase) {
    // authz is down: its address is held by a listener that closes every connection
    // (held, so no other test's server can take the port meanwhile).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let down = listener.local_addr().unwrap();
    let (back, mut comes_back) = tokio::sync::oneshot::channel::<()>();
    let refusing = tokio::spawn(async move {
        loop {
            tokio::select! {
                accepted = listener.accept() => drop(accepted),
                _ = &mut comes_back => return listener,
            }
        }
    });
    let idp = start(db, |c| {
        c.authz.grpc_url = format!("http://{down}");
        c.authz.timeout = Duration::from_millis(500);
        c.account.revocation_retry = Duration::from_millis(100);
        c.account.revocation_retry_max = Duration::from_millis(200);
    })
    .await;
    let alice = idp.user("alice").await;
    let mut browser = signed_in(&idp, "alice", PASSWORD).await;
    let page = browser.get("/account").await;
    assert!(
        page.body
            .contains("Your applications cannot be listed right now."),
        "the page works without authz: {}",
        page.body
    );
    let deleted = submit(&mut browser, "/account/delete", &[("password", PASSWORD)]).await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert!(idp.users.by_id(&alice.id).await.unwrap().is_none());
    // authz comes back on its address: the queued revocation reaches it.
    back.send(()).unwrap();
    let authz = FakeAuthz::serve(refusing.await.unwrap());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let delivered = authz.calls().iter().any(|c| {
            matches!(
                c,
                Call::RevokeSubject(r) if r.subject == alice.id
            )
        });
        if delivered && idp.metric("idp_revocations_pending").await == 0.0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never delivered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(idp.metric("idp_revocation_failures_total").await >= 1.0);
}

/// CRC-32 (ISO-HDLC) of PNG chunks.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A PNG chunk of `kind` with `data`.
fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = u32::try_from(data.len()).unwrap().to_be_bytes().to_vec();
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32(&body).to_be_bytes());
    out
}

/// A `width` × `height` RGB PNG carrying a `tEXt` chunk (metadata the upload must lose).
pub(crate) fn png_with_metadata(width: u32, height: u32) -> Vec<u8> {
    let mut row = vec![0u8];
    row.extend(std::iter::repeat_n([10u8, 120, 200], width as usize).flatten());
    let raw: Vec<u8> = std::iter::repeat_n(row, height as usize)
        .flatten()
        .collect();
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(chunk(b"IHDR", &ihdr));
    png.extend(chunk(b"tEXt", b"Comment\0secret-location-51.5N"));
    png.extend(chunk(b"IDAT", &stored_zlib(&raw)));
    png.extend(chunk(b"IEND", b""));
    png
}

/// `data` as a zlib stream of stored (uncompressed) deflate blocks.
fn stored_zlib(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = data.chunks(65_535).collect();
    for (i, block) in blocks.iter().enumerate() {
        out.push(u8::from(i + 1 == blocks.len()));
        let len = u16::try_from(block.len()).unwrap();
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &x in data {
        a = (a + u32::from(x)) % 65_521;
        b = (b + a) % 65_521;
    }
    out.extend_from_slice(&((b << 16) | a).to_be_bytes());
    out
}

/// A decompression bomb: a tiny PNG whose header claims 60000 × 60000 pixels.
fn png_bomb() -> Vec<u8> {
    let mut ihdr = 60_000u32.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&60_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(chunk(b"IHDR", &ihdr));
    png.extend(chunk(b"IDAT", &stored_zlib(&[0; 64])));
    png.extend(chunk(b"IEND", b""));
    png
}

async fn upload(browser: &mut Browser, file: &[u8]) -> Page {
    let page = browser.get("/account").await;
    let csrf = token(&page, "/account/avatar");
    browser
        .post_multipart(
            "/account/avatar",
            &[
                ("csrf", None, csrf.as_bytes()),
                ("avatar", Some("me.png"), file),
            ],
        )
        .await
}

async fn avatars_are_re_encoded_served_and_refused_when_bad(db: TestDatabase) {
    let idp = start(db, |c| c.account.avatar_max_bytes = 200_000).await;
    let alice = idp.user("alice").await;
    let mut browser = signed_in(&idp, "alice", PASSWORD).await;
    let original = png_with_metadata(300, 120);
    assert!(original.len() < 200_000);
    let saved = upload(&mut browser, &original).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let picture = claims(&idp, &alice.id).await.picture.unwrap();
    let prefix = format!("http://localhost:8081/avatars/{}?v=", alice.id);
    assert!(picture.starts_with(&prefix), "{picture}");
    let path = picture.trim_start_matches("http://localhost:8081");
    let served = reqwest::get(format!("{}{path}", idp.url)).await.unwrap();
    assert_eq!(served.status(), 200);
    assert_eq!(served.headers()["content-type"], "image/png");
    assert_eq!(served.headers()["cache-control"], "public, max-age=86400");
    let etag = served.headers()["etag"].to_str().unwrap().to_owned();
    let bytes = served.bytes().await.unwrap();
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"));
    assert!(
        !bytes.windows(15).any(|w| w == b"secret-location"),
        "metadata is stripped"
    );
    assert_eq!(&bytes[16..24], &[0, 0, 1, 0, 0, 0, 1, 0], "256 x 256");
    let again = reqwest::Client::new()
        .get(format!("{}{path}", idp.url))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    // Bad uploads: the page again with the reason; the stored picture stays.
    let too_big = upload(&mut browser, &vec![7u8; 200_001]).await;
    assert_eq!(too_big.status, 413, "{}", too_big.body);
    let not_image = upload(&mut browser, b"<svg xmlns='http://www.w3.org/2000/svg'/>").await;
    assert_eq!(not_image.status, 400);
    assert!(
        not_image.body.contains("not a PNG or JPEG"),
        "{}",
        not_image.body
    );
    let bomb = upload(&mut browser, &png_bomb()).await;
    assert_eq!(bomb.status, 400);
    assert!(bomb.body.contains("pixels a side"), "{}", bomb.body);
    let missing = browser
        .post_multipart("/account/avatar", &[("avatar", Some("me.png"), &original)])
        .await;
    assert_eq!(missing.status, 403, "no CSRF token");
    assert_eq!(
        claims(&idp, &alice.id).await.picture.as_deref(),
        Some(picture.as_str())
    );
    // Removing it: the claim goes, the URL is 404.
    let removed = submit(&mut browser, "/account/avatar/delete", &[]).await;
    assert_eq!(removed.status, 303);
    assert_eq!(claims(&idp, &alice.id).await.picture, None);
    let gone = reqwest::get(format!("{}{path}", idp.url)).await.unwrap();
    assert_eq!(gone.status(), 404);
    // Deleting the account deletes the picture.
    assert_eq!(upload(&mut browser, &original).await.status, 303);
    let deleted = submit(&mut browser, "/account/delete", &[("password", PASSWORD)]).await;
    assert_eq!(deleted.status, 200);
    let after = reqwest::get(format!("{}/avatars/{}", idp.url, alice.id))
        .await
        .unwrap();
    assert_eq!(after.status(), 404);
}

async fn email_changes_need_the_mailed_link_once_before_it_expires(db: TestDatabase) {
    let mail = tempfile::tempdir().unwrap();
    let dir = mail.path().to_owned();
    let idp = start(db, |c| {
        c.mail.transport = idp::mail::MailTransport::File;
        c.mail.file_dir = dir.clone();
    })
    .await;
    let alice = idp.user("alice").await;
    idp.user("bob").await;
    let mut browser = signed_in(&idp, "alice", PASSWORD).await;
    // Bad input: invalid, another account's address; no mail goes out.
    let invalid = submit(
        &mut browser,
        "/account/email",
        &[("email", "not-an-address")],
    )
    .await;
    assert_eq!(invalid.status, 400);
    let taken = submit(
        &mut browser,
        "/account/email",
        &[("email", "Bob@Example.com")],
    )
    .await;
    assert_eq!(taken.status, 409, "{}", taken.body);
    assert!(crate::mailbox::messages(&dir).is_empty());
    // A change: nothing changes until the link is used.
    let asked = submit(
        &mut browser,
        "/account/email",
        &[("email", "Alice@Wonderland.example")],
    )
    .await;
    assert_eq!(asked.status, 303, "{}", asked.body);
    assert_eq!(asked.location.as_deref(), Some("/account?done=email-sent"));
    assert_eq!(
        claims(&idp, &alice.id).await.email.as_deref(),
        Some("alice@example.com")
    );
    let message = crate::mailbox::wait_for(&dir, "alice@wonderland.example", 1)
        .await
        .remove(0);
    let link = crate::mailbox::link(
        &message,
        "http://localhost:8081/account/email/verify?token=",
    );
    let token = link.rsplit_once("token=").unwrap().1.to_owned();
    // A tampered link finds nothing.
    let mut tampered = token.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let mut other = Browser::new(&idp);
    assert_eq!(
        other
            .get(&format!("/account/email/verify?token={tampered}"))
            .await
            .status,
        410
    );
    // The link works without a session, shows no account data, and needs its CSRF token.
    let confirm = other
        .get(&format!("/account/email/verify?token={token}"))
        .await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    assert!(!confirm.body.contains("wonderland"), "{}", confirm.body);
    let forged = other
        .post("/account/email/verify", &[("token", &token)])
        .await;
    assert_eq!(forged.status, 403);
    let csrf = confirm.hidden("csrf");
    let done = other
        .post(
            "/account/email/verify",
            &[("csrf", &csrf), ("token", &token)],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains(r#"id="email-confirmed""#));
    let now = claims(&idp, &alice.id).await;
    assert_eq!(now.email.as_deref(), Some("alice@wonderland.example"));
    assert_eq!(now.email_verified, Some(true));
    // Used once only.
    let reused = other
        .post(
            "/account/email/verify",
            &[("csrf", &csrf), ("token", &token)],
        )
        .await;
    assert_eq!(reused.status, 410);
    // An expired link finds nothing either.
    let asked = submit(
        &mut browser,
        "/account/email",
        &[("email", "alice@elsewhere.example")],
    )
    .await;
    assert_eq!(asked.status, 303);
    let message = crate::mailbox::wait_for(&dir, "alice@elsewhere.example", 1)
        .await
        .remove(0);
    let link = crate::mailbox::link(
        &message,
        "http://localhost:8081/account/email/verify?token=",
    );
    let token = link.rsplit_once("token=").unwrap().1.to_owned();
    idp.clock.advance(Duration::from_secs(2 * 3600));
    let expired = other
        .post(
            "/account/email/verify",
            &[("csrf", &csrf), ("token", &token)],
        )
        .await;
    assert_eq!(expired.status, 410);
    assert_eq!(
        claims(&idp, &alice.id).await.email.as_deref(),
        Some("alice@wonderland.example")
    );
}

storage::backend_tests!(idp::MIGRATIONS;
    avatars_are_re_encoded_served_and_refused_when_bad,
    email_changes_need_the_mailed_link_once_before_it_expires,
);

storage::backend_tests!(idp::MIGRATIONS;
    signed_out_browsers_get_a_redirect_never_data,
    every_form_refuses_a_missing_or_foreign_csrf_token,
    profile_changes_reach_the_claims_at_once,
    usernames_are_unique_validated_and_held_after_a_change,
    a_password_change_needs_the_current_one_and_ends_other_sessions,
    other_sessions_end_on_request,
    apps_with_remembered_consent_are_listed_and_revoked_at_authz,
    deletion_needs_re_authentication_then_removes_everything,
    a_deletion_while_authz_is_down_is_revoked_once_it_is_back,
);
