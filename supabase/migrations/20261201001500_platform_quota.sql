-- Herald's own count of a platform's daily API quota: YouTube's videos.insert.
--
-- Google counts the YouTube Data API's quota per Cloud project per day (Herald's OAuth client: one
-- per deployment) and resets it at midnight Pacific Time; videos.insert has its own bucket, 100
-- calls a day at 1 unit each (older projects: 1600 of 10000 shared units). YouTube's quotaExceeded stays the authoritative answer (a raised quota, other
-- clients of the project and refused calls all count in Google's figure), but Herald also counts
-- what it spends, so that the insert that would go over the quota is not sent at all: the run
-- pauses the platform until that midnight as it does for quotaExceeded.
--
-- herald.platform_quota holds the units spent per platform per day (the day as the platform counts
-- it: Pacific for YouTube, given by the caller). herald_spend_quota_v1 adds a call's units only if
-- the day's total stays within the limit, in one statement: INSERT ... ON CONFLICT DO UPDATE ...
-- WHERE takes the row's lock, so concurrent runs never spend past the limit together.
--
-- Additive: one new table and one new function, service role only.

create table herald.platform_quota (
    platform text not null check (length(platform) between 1 and 40),
    day date not null,
    units integer not null check (units >= 0),
    primary key (platform, day)
);
alter table herald.platform_quota enable row level security;  -- no policy: service_role only
revoke all on herald.platform_quota from public, anon, authenticated;
grant select, insert, update, delete on herald.platform_quota to service_role;

-- Adds p_units to p_platform's count for p_day if the total stays within p_limit; answers
-- {"spent": true|false, "used": the day's units after the call}. A refused spend writes nothing.
create function public.herald_spend_quota_v1(p_platform text, p_day date, p_units integer, p_limit integer)
returns jsonb
language plpgsql volatile set search_path = '' as $$
declare
    v_used integer;
begin
    if p_platform is null or p_day is null or p_units is null or p_units < 0 or p_limit is null then
        raise exception 'herald_spend_quota_v1: platform, day, units (>= 0) and limit are required'
            using errcode = '22023';
    end if;
    if p_units > p_limit then
        select coalesce((select q.units from herald.platform_quota q
                          where q.platform = p_platform and q.day = p_day), 0) into v_used;
        return jsonb_build_object('spent', false, 'used', v_used);
    end if;
    insert into herald.platform_quota as q (platform, day, units) values (p_platform, p_day, p_units)
        on conflict (platform, day) do update set units = q.units + excluded.units
         where q.units + excluded.units <= p_limit
    returning q.units into v_used;
    if found then
        return jsonb_build_object('spent', true, 'used', v_used);
    end if;
    -- refused: the row exists (the conflict locked it) and stays as it was
    select q.units into v_used from herald.platform_quota q where q.platform = p_platform and q.day = p_day;
    return jsonb_build_object('spent', false, 'used', coalesce(v_used, 0));
end
$$;

revoke all on function public.herald_spend_quota_v1(text, date, integer, integer) from public, anon, authenticated;
grant execute on function public.herald_spend_quota_v1(text, date, integer, integer) to service_role;
