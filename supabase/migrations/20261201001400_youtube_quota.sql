-- YouTube's resumable upload, kept across a run that dies mid-call.
--
-- A YouTube video goes up through an upload session (videos.insert, resumable protocol): the
-- session's URI is what lets the next attempt ask how many bytes YouTube holds and send only the
-- rest, and what tells whether a lost last answer made the video. A failed attempt already hands
-- it back (herald_record_results_v2 keeps the adapter's details in post_targets.resume), but a run
-- killed mid-upload (a function timeout) records nothing. So the run saves the session as soon as
-- it exists, before the first byte: herald_save_progress_v1 writes a target's resume while its post
-- is leased to the caller's run and the target is marked sending, and nothing else. (TikTok saves
-- its publish_id the same way.) The quota's own count is 20261201001500_platform_quota.sql.
--
-- Additive: one new function, service role only.

create function public.herald_save_progress_v1(p_lease_id uuid, p_target_id uuid, p_resume jsonb) returns boolean
language sql volatile set search_path = '' as $$
    with saved as (
        update herald.post_targets t set resume = p_resume
         where t.id = p_target_id and t.status = 'publishing' and jsonb_typeof(p_resume) = 'object'
           and t.post_id in (select p.id from herald.posts p
                              where p.status = 'publishing' and p.lease_id = p_lease_id)
        returning 1
    )
    select exists (select from saved)
$$;

revoke all on function public.herald_save_progress_v1(uuid, uuid, jsonb) from public, anon, authenticated;
grant execute on function public.herald_save_progress_v1(uuid, uuid, jsonb) to service_role;
