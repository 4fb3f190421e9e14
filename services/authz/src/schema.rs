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
    }
}

diesel::table! {
    client_secrets (id) {
        id -> Text,
        client_id -> Text,
        secret_hash -> Text,
        created_at -> BigInt,
        expires_at -> Nullable<BigInt>,
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
    }
}

diesel::table! {
    revoked_jtis (jti) {
        jti -> Text,
        client_id -> Text,
        expires_at -> BigInt,
    }
}
