-- Row-level security: the second lock behind the owner filter in every herald_*_v1 function.
-- A signed-in user reaches only their own rows; anon reaches nothing; the publish run uses the
-- service role (BYPASSRLS). Policies compare with (select auth.uid()) so it is evaluated once.

alter table public.channels enable row level security;
alter table public.posts enable row level security;
alter table public.post_targets enable row level security;
alter table public.post_runs enable row level security;
alter table public.activity_logs enable row level security;
alter table public.cron_runs enable row level security;
alter table public.sandbox_outbox enable row level security;
alter table public.idempotency_keys enable row level security;

create policy channels_owner on public.channels for all to authenticated
    using (user_id = (select auth.uid()))
    with check (user_id = (select auth.uid()));

create policy posts_owner on public.posts for all to authenticated
    using (user_id = (select auth.uid()))
    with check (user_id = (select auth.uid()));

-- A target belongs to its post's owner and may only point at that owner's post and channel.
create policy post_targets_owner on public.post_targets for all to authenticated
    using (user_id = (select auth.uid()))
    with check (
        user_id = (select auth.uid())
        and exists (select from public.posts p where p.id = post_id and p.user_id = (select auth.uid()))
        and (channel_id is null
             or exists (select from public.channels c where c.id = channel_id and c.user_id = (select auth.uid())))
    );

-- Attempts are written by the publish run only; the owner reads them through the post.
create policy post_runs_read_through_post on public.post_runs for select to authenticated
    using (exists (select from public.posts p where p.id = post_id and p.user_id = (select auth.uid())));

-- Append-only: the owner's functions add entries, nobody edits them.
create policy activity_logs_read_own on public.activity_logs for select to authenticated
    using (user_id = (select auth.uid()));
create policy activity_logs_append_own on public.activity_logs for insert to authenticated
    with check (user_id = (select auth.uid()));

-- cron_runs: no policy; the service role alone reads and writes it.

create policy sandbox_outbox_read_own on public.sandbox_outbox for select to authenticated
    using (user_id = (select auth.uid()));

create policy idempotency_keys_read_own on public.idempotency_keys for select to authenticated
    using (user_id = (select auth.uid()));
create policy idempotency_keys_insert_own on public.idempotency_keys for insert to authenticated
    with check (user_id = (select auth.uid()));

-- Supabase's default privileges open every public table to anon and authenticated; Herald's API
-- never acts as anon, and cron_runs is the service role's alone.
revoke all on public.channels, public.posts, public.post_targets, public.post_runs, public.activity_logs,
    public.cron_runs, public.sandbox_outbox, public.idempotency_keys from anon;
revoke all on public.cron_runs from authenticated;
revoke insert, update, delete, truncate on public.post_runs, public.sandbox_outbox from authenticated;
revoke update, delete, truncate on public.activity_logs, public.idempotency_keys from authenticated;
