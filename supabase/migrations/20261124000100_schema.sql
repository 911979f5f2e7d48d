-- Herald's tables: the same tables, columns and checks as services/store/sqlite_schema.sql, in
-- Postgres types. Every row a user owns carries user_id (auth.users, deleted with the user).

create schema if not exists herald_private;  -- helpers of the herald_*_v1 functions; not exposed by the API

create table public.channels (
    id uuid primary key default gen_random_uuid(),
    user_id uuid not null references auth.users (id) on delete cascade,
    platform text not null check (length(platform) between 1 and 40),
    account_id text not null,
    name text not null,
    metadata jsonb not null default '{}'::jsonb check (jsonb_typeof(metadata) = 'object'),
    status text not null default 'active' check (status in ('active', 'needs_reconnect')),
    credentials_encrypted text not null,
    token_expires_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint channels_one_per_account unique (user_id, platform, account_id)
);

create table public.posts (
    id uuid primary key default gen_random_uuid(),
    user_id uuid not null references auth.users (id) on delete cascade,
    content jsonb not null check (jsonb_typeof(content) = 'object'),
    scheduled_at timestamptz,
    timezone text not null default 'UTC',
    rrule text,
    status text not null check (status in ('draft', 'scheduled', 'publishing', 'published',
                                           'partial', 'failed', 'cancelled', 'needs_review')),
    attempts integer not null default 0 check (attempts >= 0),
    error text,
    next_attempt_at timestamptz,
    lease_id uuid,
    lease_expires_at timestamptz,
    series_id uuid,
    series_start_at timestamptz,
    -- the series' content while this occurrence carries a one-off edit (PostChanges.occurrence_only)
    series_content jsonb,
    parent_post_id uuid references public.posts (id) on delete set null,
    published_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint posts_scheduled_has_time check (status <> 'scheduled' or scheduled_at is not null),
    constraint posts_publishing_has_lease check (status <> 'publishing' or lease_id is not null)
);
-- The claim: due posts oldest first, and leases that expired.
create index posts_due on public.posts (coalesce(next_attempt_at, scheduled_at), id) where status = 'scheduled';
create index posts_lease on public.posts (lease_expires_at, id) where status = 'publishing';
-- The list filters, per owner.
create index posts_user_created on public.posts (user_id, created_at desc, id desc);
create index posts_user_scheduled on public.posts (user_id, scheduled_at);
create index posts_user_updated on public.posts (user_id, updated_at);
-- one next occurrence per finished occurrence, however often its results are recorded
create unique index posts_one_next_occurrence on public.posts (parent_post_id) where parent_post_id is not null;

create table public.post_targets (
    id uuid primary key default gen_random_uuid(),
    post_id uuid not null references public.posts (id) on delete cascade,
    channel_id uuid references public.channels (id) on delete set null,
    user_id uuid not null references auth.users (id) on delete cascade,
    platform text not null,
    status text not null default 'pending' check (status in ('pending', 'publishing', 'published',
                                                              'failed', 'cancelled', 'unknown')),
    platform_post_id text,
    platform_post_url text,
    error text,
    attempts integer not null default 0 check (attempts >= 0),
    rate_limited integer not null default 0 check (rate_limited >= 0),  -- attempts that spent no retry
    published_at timestamptz,
    -- where the last failed attempt stopped, as its adapter said (an Instagram container id, the
    -- WhatsApp recipients already sent to): given back on the next attempt, never done twice
    resume jsonb not null default '{}'::jsonb check (jsonb_typeof(resume) = 'object'),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint post_targets_one_per_channel unique (post_id, channel_id)
);
create index post_targets_channel on public.post_targets (channel_id, status);
create index post_targets_platform on public.post_targets (platform, post_id);
create index post_targets_user on public.post_targets (user_id, platform, status);

create table public.post_runs (
    id uuid primary key default gen_random_uuid(),
    post_id uuid not null references public.posts (id) on delete cascade,
    target_id uuid not null references public.post_targets (id) on delete cascade,
    attempt integer not null check (attempt >= 1),
    outcome text not null check (outcome in ('published', 'transient', 'rate_limited', 'auth',
                                             'permanent', 'unknown')),
    http_status integer,
    error_code text,
    error_message text,
    idempotency_key text,
    started_at timestamptz not null,
    finished_at timestamptz not null,
    duration_ms integer not null check (duration_ms >= 0)
);
create index post_runs_post on public.post_runs (post_id, started_at);
create index post_runs_target on public.post_runs (target_id);

-- Append-only audit trail; post_id has no foreign key so that a deleted post keeps its history.
create table public.activity_logs (
    id bigint generated always as identity primary key,
    user_id uuid references auth.users (id) on delete cascade,
    post_id uuid,
    event text not null,
    details jsonb not null default '{}'::jsonb,
    created_at timestamptz not null default now()
);
create index activity_user on public.activity_logs (user_id, id desc);
create index activity_post on public.activity_logs (post_id, id desc);

-- One row per call of the publish endpoint: the heartbeat the health endpoint reads.
create table public.cron_runs (
    id uuid primary key,
    trigger text not null check (length(trigger) between 1 and 40),
    started_at timestamptz not null,
    finished_at timestamptz not null,
    claimed integer not null check (claimed >= 0),
    published integer not null check (published >= 0),
    failed integer not null check (failed >= 0),
    remaining_due integer not null check (remaining_due >= 0),
    duration_ms integer not null check (duration_ms >= 0),
    error text
);
create index cron_runs_started on public.cron_runs (started_at desc);

-- What the sandbox platform "published"; kept when the channel or post goes.
create table public.sandbox_outbox (
    id uuid primary key,
    user_id uuid not null references auth.users (id) on delete cascade,
    channel_id uuid,
    target_id uuid not null,
    text text not null,
    media jsonb not null default '[]'::jsonb check (jsonb_typeof(media) = 'array'),
    published_at timestamptz not null
);
create index sandbox_outbox_user on public.sandbox_outbox (user_id, published_at desc);

-- Idempotency-Key of a bulk create: the posts it made and the request it came with.
create table public.idempotency_keys (
    user_id uuid not null references auth.users (id) on delete cascade,
    key text not null,
    request_hash text,
    post_ids uuid[] not null,
    created_at timestamptz not null default now(),
    primary key (user_id, key)
);

create function herald_private.set_updated_at() returns trigger
language plpgsql set search_path = '' as $$
begin
    new.updated_at := now();
    return new;
end
$$;

create trigger channels_updated_at before update on public.channels
    for each row execute function herald_private.set_updated_at();
create trigger posts_updated_at before update on public.posts
    for each row execute function herald_private.set_updated_at();
create trigger post_targets_updated_at before update on public.post_targets
    for each row execute function herald_private.set_updated_at();
