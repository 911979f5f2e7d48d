-- A lost answer is looked up later, not sent to review: a target whose call's answer was lost on a
-- platform that can look its posts up (or dedupes on the idempotency key) stays marked sending,
-- and its post stays 'publishing' under a lease that ends when the platform would list the post;
-- the run that recovers it then decides. Only a lookup that cannot decide leaves it 'unknown'.
--
-- And the time a target was first handed to its platform, the same on every retry: Bluesky record
-- keys are TIDs of that time (atproto.com/specs/tid: a TID "is derived from the creation time").
--
-- Additive: one nullable column; the functions keep their signatures and answer as before for
-- every call an earlier release makes.

alter table herald.post_targets add column first_attempt_at timestamptz;

create or replace function public.herald_mark_sending_v1(p_target_ids uuid[], p_now timestamptz) returns void
language sql volatile set search_path = '' as $$
    update herald.post_targets t set status = 'publishing', first_attempt_at = coalesce(t.first_attempt_at, p_now)
     where t.status = 'pending' and t.id = any(p_target_ids)
       and t.post_id in (select p.id from herald.posts p where p.status = 'publishing')
$$;

-- herald_record_results_v2 learns to keep a 'publishing' post leased until its "lookup_at" in
-- 20261201000400_events.sql, which restates the function once for both changes.
