//! Diesel table definitions of the authz database (see `migrations/`).
#![allow(missing_docs)]

diesel::table! {
    signing_keys (kid) {
        kid -> Text,
        alg -> Text,
        generation -> BigInt,
        state -> Text,
        public_jwk -> Text,
        private_key -> Text,
        created_at -> BigInt,
        activates_at -> BigInt,
        retired_at -> Nullable<BigInt>,
        remove_after -> Nullable<BigInt>,
    }
}

diesel::table! {
    clients (id) {
        id -> Text,
        name -> Text,
        auth_method -> Text,
        redirect_uris -> Text,
        post_logout_redirect_uris -> Text,
        grant_types -> Text,
        scopes -> Text,
        audiences -> Text,
        access_token_format -> Text,
        token_lifetimes -> Text,
        signing_alg -> Nullable<Text>,
        first_party -> Bool,
        can_introspect -> Bool,
        created_at -> BigInt,
        updated_at -> BigInt,
        // browser clients (CORS)
        allowed_origins -> Text,
        // logout: OpenID Connect Back-/Front-Channel Logout 1.0 metadata (JSON).
        logout -> Text,
        // token exchange (RFC 8693)
        token_exchange -> Text,
        // admin API: the revision behind the ETag (optimistic concurrency).
        revision -> BigInt,
        // clientauth: client authentication by JWT (RFC 7523) and mTLS (RFC 8705)
        jwks -> Nullable<Text>,
        jwks_uri -> Nullable<Text>,
        token_endpoint_auth_signing_alg -> Nullable<Text>,
        tls_client_auth_subject_dn -> Nullable<Text>,
        tls_client_auth_san_dns -> Nullable<Text>,
        tls_client_auth_san_uri -> Nullable<Text>,
        tls_client_auth_san_ip -> Nullable<Text>,
        tls_client_auth_san_email -> Nullable<Text>,
        // PAR (RFC 9126 §6)
        require_pushed_authorization_requests -> Bool,
    }
}

diesel::table! {
    client_secrets (id) {
        id -> Text,
        client_id -> Text,
        secret_hash -> Text,
        created_at -> BigInt,
        expires_at -> Nullable<BigInt>,
        // clientauth: the secret sealed with the KEK (client_secret_jwt only)
        sealed_secret -> Nullable<Text>,
    }
}

// clientauth: client assertion `jti`s seen (RFC 7523 §3 item 7)
diesel::table! {
    client_assertion_jtis (client_id, jti) {
        client_id -> Text,
        jti -> Text,
        expires_at -> BigInt,
    }
}

diesel::table! {
    opaque_tokens (token_hash) {
        token_hash -> Text,
        jti -> Text,
        client_id -> Text,
        subject -> Text,
        scope -> Text,
        audience -> Text,
        issued_at -> BigInt,
        expires_at -> BigInt,
        // token exchange (RFC 8693)
        act -> Nullable<Text>,
    }
}

diesel::table! {
    revoked_jtis (jti) {
        jti -> Text,
        client_id -> Text,
        expires_at -> BigInt,
    }
}

diesel::table! {
    authorization_requests (id) {
        id -> Text,
        browser_hash -> Text,
        stage -> Text,
        challenge_hash -> Nullable<Text>,
        client_id -> Text,
        request -> Text,
        login -> Nullable<Text>,
        granted_scope -> Nullable<Text>,
        error -> Nullable<Text>,
        error_description -> Nullable<Text>,
        created_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::table! {
    browser_sessions (session_key) {
        session_key -> Text,
        sid -> Text,
        subject -> Text,
        idp_session_id -> Text,
        auth_time -> BigInt,
        amr -> Text,
        acr -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::table! {
    consents (subject, client_id) {
        subject -> Text,
        client_id -> Text,
        scope -> Text,
        updated_at -> BigInt,
    }
}

diesel::table! {
    grants (id) {
        id -> Text,
        client_id -> Text,
        subject -> Text,
        scope -> Text,
        sid -> Text,
        auth_time -> BigInt,
        amr -> Text,
        acr -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
        expires_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    authorization_codes (code_hash) {
        code_hash -> Text,
        client_id -> Text,
        redirect_uri -> Text,
        code_challenge -> Text,
        nonce -> Nullable<Text>,
        scope -> Text,
        subject -> Text,
        sid -> Text,
        auth_time -> BigInt,
        amr -> Text,
        acr -> Text,
        issued_at -> BigInt,
        expires_at -> BigInt,
        redeemed_at -> Nullable<BigInt>,
        grant_id -> Nullable<Text>,
    }
}

diesel::table! {
    refresh_tokens (token_hash) {
        token_hash -> Text,
        grant_id -> Text,
        client_id -> Text,
        issued_at -> BigInt,
        expires_at -> BigInt,
        rotated_at -> Nullable<BigInt>,
        successor_salt -> Nullable<Text>,
    }
}

diesel::table! {
    grant_access_tokens (jti) {
        jti -> Text,
        grant_id -> Text,
        opaque_hash -> Nullable<Text>,
        expires_at -> BigInt,
    }
}

diesel::table! {
    logout_deliveries (id) {
        id -> Text,
        client_id -> Text,
        uri -> Text,
        subject -> Text,
        sid -> Text,
        jti -> Text,
        attempts -> Integer,
        next_attempt_at -> BigInt,
        created_at -> BigInt,
        expires_at -> BigInt,
        last_error -> Nullable<Text>,
    }
}

// device grant (RFC 8628)
diesel::table! {
    device_authorizations (device_code_hash) {
        device_code_hash -> Text,
        user_code_hash -> Text,
        client_id -> Text,
        scope -> Text,
        status -> Text,
        poll_interval -> BigInt,
        last_polled_at -> Nullable<BigInt>,
        subject -> Nullable<Text>,
        idp_session_id -> Nullable<Text>,
        sid -> Nullable<Text>,
        auth_time -> Nullable<BigInt>,
        amr -> Nullable<Text>,
        acr -> Nullable<Text>,
        grant_id -> Nullable<Text>,
        created_at -> BigInt,
        expires_at -> BigInt,
    }
}

// dcr: Dynamic Client Registration (RFC 7591, RFC 7592)
diesel::table! {
    registration_tokens (id) {
        id -> Text,
        token_hash -> Text,
        description -> Text,
        scope -> Text,
        uses_left -> BigInt,
        created_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::table! {
    client_registrations (client_id) {
        client_id -> Text,
        access_token_hash -> Text,
        registration_token_id -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

// PAR (RFC 9126)
diesel::table! {
    pushed_requests (request_hash) {
        request_hash -> Text,
        client_id -> Text,
        parameters -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::joinable!(refresh_tokens -> grants (grant_id));
diesel::joinable!(grant_access_tokens -> grants (grant_id));
diesel::allow_tables_to_appear_in_same_query!(
    grants,
    refresh_tokens,
    grant_access_tokens,
    opaque_tokens,
    revoked_jtis,
    authorization_codes,
    logout_deliveries,
    device_authorizations,
);
