-- The embedded store's schema: the same tables and checks as supabase/migrations, in SQLite.
PRAGMA journal_mode = WAL;

CREATE TABLE IF NOT EXISTS channels (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    platform TEXT NOT NULL CHECK (length(platform) BETWEEN 1 AND 40),
    account_id TEXT NOT NULL,
    name TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'needs_reconnect')),
    credentials_encrypted TEXT NOT NULL,
    token_expires_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (user_id, platform, account_id)
);

CREATE TABLE IF NOT EXISTS posts (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    content TEXT NOT NULL,
    scheduled_at TEXT,
    timezone TEXT NOT NULL DEFAULT 'UTC',
    rrule TEXT,
    status TEXT NOT NULL CHECK (status IN ('draft', 'scheduled', 'publishing', 'published',
                                           'partial', 'failed', 'cancelled', 'needs_review')),
    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    error TEXT,
    next_attempt_at TEXT,
    lease_id TEXT,
    lease_expires_at TEXT,
    series_id TEXT,
    series_start_at TEXT,
    series_content TEXT,
    parent_post_id TEXT REFERENCES posts (id) ON DELETE SET NULL,
    published_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    CHECK (status <> 'scheduled' OR scheduled_at IS NOT NULL),
    CHECK (status <> 'publishing' OR lease_id IS NOT NULL)
);
CREATE INDEX IF NOT EXISTS posts_due ON posts (coalesce(next_attempt_at, scheduled_at)) WHERE status = 'scheduled';
CREATE INDEX IF NOT EXISTS posts_lease ON posts (lease_expires_at) WHERE status = 'publishing';
CREATE INDEX IF NOT EXISTS posts_user_created ON posts (user_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS posts_user_scheduled ON posts (user_id, scheduled_at);
CREATE INDEX IF NOT EXISTS posts_user_updated ON posts (user_id, updated_at);
-- one next occurrence per finished occurrence, however often its results are recorded
CREATE UNIQUE INDEX IF NOT EXISTS posts_one_next_occurrence ON posts (parent_post_id) WHERE parent_post_id IS NOT NULL;

CREATE TABLE IF NOT EXISTS post_targets (
    id TEXT PRIMARY KEY,
    post_id TEXT NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    channel_id TEXT REFERENCES channels (id) ON DELETE SET NULL,
    user_id TEXT NOT NULL,
    platform TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'publishing', 'published',
                                                             'failed', 'cancelled', 'unknown')),
    platform_post_id TEXT,
    platform_post_url TEXT,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    rate_limited INTEGER NOT NULL DEFAULT 0 CHECK (rate_limited >= 0),  -- attempts that spent no retry
    published_at TEXT,
    resume TEXT,  -- JSON object: where the last failed attempt stopped (adapter details)
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (post_id, channel_id)
);
CREATE INDEX IF NOT EXISTS post_targets_channel ON post_targets (channel_id, status);
CREATE INDEX IF NOT EXISTS post_targets_platform ON post_targets (platform, post_id);

CREATE TABLE IF NOT EXISTS post_runs (
    id TEXT PRIMARY KEY,
    post_id TEXT NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    target_id TEXT NOT NULL REFERENCES post_targets (id) ON DELETE CASCADE,
    attempt INTEGER NOT NULL CHECK (attempt >= 1),
    outcome TEXT NOT NULL CHECK (outcome IN ('published', 'transient', 'rate_limited', 'auth',
                                             'permanent', 'unknown')),
    http_status INTEGER,
    error_code TEXT,
    error_message TEXT,
    idempotency_key TEXT,
    started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    duration_ms INTEGER NOT NULL CHECK (duration_ms >= 0)
);
CREATE INDEX IF NOT EXISTS post_runs_post ON post_runs (post_id, started_at);

CREATE TABLE IF NOT EXISTS activity_logs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT,
    post_id TEXT,
    event TEXT NOT NULL,
    details TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS activity_user ON activity_logs (user_id, id DESC);
CREATE INDEX IF NOT EXISTS activity_post ON activity_logs (post_id, id DESC);

CREATE TABLE IF NOT EXISTS cron_runs (
    id TEXT PRIMARY KEY,
    trigger TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    claimed INTEGER NOT NULL,
    published INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    remaining_due INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    error TEXT
);
CREATE INDEX IF NOT EXISTS cron_runs_started ON cron_runs (started_at DESC);

CREATE TABLE IF NOT EXISTS sandbox_outbox (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    channel_id TEXT,
    target_id TEXT NOT NULL,
    text TEXT NOT NULL,
    media TEXT NOT NULL DEFAULT '[]',
    published_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sandbox_outbox_user ON sandbox_outbox (user_id, published_at DESC);

CREATE TABLE IF NOT EXISTS idempotency_keys (
    user_id TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT,
    post_ids TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (user_id, key)
);
