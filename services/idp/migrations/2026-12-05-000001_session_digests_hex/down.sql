-- Back to base64url digests: the hex digests written since cannot be converted portably
-- either, so these browser sessions end as well (their users sign in again).
DELETE FROM sessions;
