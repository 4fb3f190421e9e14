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
