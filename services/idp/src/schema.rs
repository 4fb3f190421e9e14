//! Diesel table definitions of the idp database (see `migrations/`).
#![allow(missing_docs)]

diesel::table! {
    users (id) {
        id -> Text,
        username -> Text,
        email -> Nullable<Text>,
        email_verified -> Bool,
        name -> Nullable<Text>,
        given_name -> Nullable<Text>,
        family_name -> Nullable<Text>,
        picture -> Nullable<Text>,
        locale -> Nullable<Text>,
        password_hash -> Text,
        disabled -> Bool,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        secret_hash -> Text,
        user_id -> Text,
        auth_time -> BigInt,
        amr -> Text,
        acr -> Text,
        created_at -> BigInt,
        last_seen_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::table! {
    login_throttle (id) {
        id -> Text,
        failures -> BigInt,
        last_failure_at -> BigInt,
        blocked_until -> BigInt,
    }
}

diesel::table! {
    login_devices (token_hash) {
        token_hash -> Text,
        user_id -> Text,
        network -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
    }
}

// account page
diesel::table! {
    retired_usernames (username) {
        username -> Text,
        user_id -> Text,
        held_until -> BigInt,
    }
}

// account page
diesel::table! {
    revocation_outbox (id) {
        id -> Text,
        subject -> Text,
        client_id -> Nullable<Text>,
        attempts -> BigInt,
        next_attempt_at -> BigInt,
        last_error -> Nullable<Text>,
        created_at -> BigInt,
    }
}

// account page
diesel::table! {
    avatars (user_id) {
        user_id -> Text,
        png -> Binary,
        etag -> Text,
        updated_at -> BigInt,
    }
}

// account page
diesel::joinable!(avatars -> users (user_id));
diesel::allow_tables_to_appear_in_same_query!(users, retired_usernames, avatars);

// email links (issue 21)
diesel::table! {
    email_links (token_hash) {
        token_hash -> Text,
        purpose -> Text,
        user_id -> Nullable<Text>,
        email -> Text,
        payload -> Nullable<Text>,
        created_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::table! {
    email_rate (id) {
        id -> Text,
        window_start -> BigInt,
        count -> BigInt,
    }
}

diesel::joinable!(email_links -> users (user_id));

diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(login_devices -> users (user_id));
diesel::allow_tables_to_appear_in_same_query!(
    users,
    sessions,
    login_throttle,
    login_devices,
    email_links,
    email_rate
);
// upstream sign-in
diesel::table! {
    upstream_identities (provider, subject) {
        provider -> Text,
        subject -> Text,
        user_id -> Text,
        email -> Nullable<Text>,
        created_at -> BigInt,
        last_login_at -> BigInt,
        // upstream tokens (2026-12-07-130000_upstream_tokens)
        tokens -> Nullable<Text>,
        tokens_updated_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    upstream_flows (state_hash) {
        state_hash -> Text,
        provider -> Text,
        browser_hash -> Text,
        login_challenge -> Nullable<Text>,
        link_user_id -> Nullable<Text>,
        nonce -> Text,
        pkce_verifier -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::table! {
    upstream_pending (id_hash) {
        id_hash -> Text,
        provider -> Text,
        subject -> Text,
        browser_hash -> Text,
        login_challenge -> Text,
        claims -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        // upstream tokens (2026-12-07-130000_upstream_tokens)
        tokens -> Nullable<Text>,
    }
}

diesel::joinable!(upstream_identities -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    users,
    upstream_identities,
    upstream_flows,
    upstream_pending
);
