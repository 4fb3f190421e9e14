//! The `audit_events` table as each service's migration creates it.
#![allow(missing_docs)]

diesel::table! {
    audit_events (id) {
        id -> Text,
        occurred_at -> BigInt,
        actor_kind -> Text,
        actor_id -> Nullable<Text>,
        address -> Nullable<Text>,
        action -> Text,
        target_kind -> Nullable<Text>,
        target_id -> Nullable<Text>,
        outcome -> Text,
        reason -> Nullable<Text>,
    }
}
