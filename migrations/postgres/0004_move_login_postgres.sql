-- PostgreSQL only (SQLite has no stored procedures; there the gateway runs the
-- same steps as statements of one transaction, see service::staff::move_login).
--
-- move_login: moves the live login p_login of site p_site to profile p_to in one
-- call, so a guarded change costs one round trip instead of eight. It takes the
-- same steps, locks and order as the transaction the gateway runs otherwise:
-- the login (FOR UPDATE), both profiles in id order, their modules (read after
-- the locks), the pools that change in module order; it checks every pool
-- before it writes anything (R4), then moves the user counts, the login and
-- the pools and records the audit event (R2, R4, R6, R8). Each statement in it
-- sees what committed before it started, and the rows it decides on are locked.
--
-- Returns one row per pool change (module_id, delta, and used/total as locked,
-- NULL where the site has no pool for the module), or one row with NULL module
-- when no pool changes, all carrying status:
--   'moved'    done: the login columns are the login as it is now;
--   'short'    a pool cannot take its change: nothing was written;
--   'fallback' nothing was written and the caller must take its general path
--              (no such live login, same profile, a profile not of the site).
CREATE FUNCTION move_login(p_site BIGINT, p_login BIGINT, p_to BIGINT, p_at BIGINT, p_actor TEXT,
                           p_actor_kind TEXT, p_actor_person BIGINT, p_target TEXT)
RETURNS TABLE (status TEXT, module_id BIGINT, delta BIGINT, used BIGINT, total BIGINT,
               id BIGINT, site_id BIGINT, person_id BIGINT, username TEXT, valid_until TEXT,
               profile_id BIGINT, is_admin INTEGER, occupying INTEGER, created_at BIGINT)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    l logins%ROWTYPE;
    users BIGINT;
    locked INTEGER;
    fits BOOLEAN := true;
    r RECORD;
    u BIGINT;
    t BIGINT;
    m_ids BIGINT[] := '{}';
    m_deltas BIGINT[] := '{}';
    m_used BIGINT[] := '{}';
    m_total BIGINT[] := '{}';
BEGIN
    SELECT * INTO l FROM logins lg
     WHERE lg.id = p_login AND lg.site_id = p_site AND lg.deleted_at IS NULL FOR UPDATE;
    IF FOUND AND l.profile_id <> p_to THEN
        PERFORM 1 FROM profiles pr WHERE pr.id IN (l.profile_id, p_to) AND pr.site_id = p_site
         ORDER BY pr.id FOR NO KEY UPDATE;
        GET DIAGNOSTICS locked = ROW_COUNT;
    END IF;
    IF locked IS DISTINCT FROM 2 THEN
        RETURN QUERY SELECT 'fallback'::TEXT, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT,
            NULL::BIGINT, NULL::BIGINT, NULL::BIGINT, NULL::TEXT, NULL::TEXT, NULL::BIGINT, NULL::INTEGER,
            NULL::INTEGER, NULL::BIGINT;
        RETURN;
    END IF;
    users := l.occupying;
    -- The modules of both profiles, read under their locks; the pools that change, each
    -- locked in module order (one statement per pool, as the gateway's transaction does).
    FOR r IN SELECT pm.module_id AS mid,
                    SUM(CASE WHEN pm.profile_id = p_to THEN users ELSE -users END)::BIGINT AS d
               FROM profile_modules pm WHERE pm.profile_id IN (l.profile_id, p_to)
              GROUP BY pm.module_id
             HAVING SUM(CASE WHEN pm.profile_id = p_to THEN users ELSE -users END) <> 0
              ORDER BY pm.module_id
    LOOP
        u := NULL;
        t := NULL;
        SELECT x.used, x.total INTO u, t FROM license_pools x
         WHERE x.site_id = p_site AND x.module_id = r.mid FOR NO KEY UPDATE;
        m_ids := m_ids || r.mid;
        m_deltas := m_deltas || r.d;
        m_used := m_used || u;
        m_total := m_total || t;
        IF u IS NULL OR u + r.d > t THEN
            fits := false;
        END IF;
    END LOOP;
    IF fits THEN
        UPDATE profiles pr SET user_count = pr.user_count + CASE WHEN pr.id = p_to THEN users ELSE -users END
         WHERE pr.id IN (l.profile_id, p_to);
        UPDATE logins lg SET profile_id = p_to WHERE lg.id = p_login RETURNING * INTO l;
        UPDATE license_pools x SET used = x.used + c.d FROM unnest(m_ids, m_deltas) AS c(m, d)
         WHERE x.site_id = p_site AND x.module_id = c.m;
        INSERT INTO audit_events (site_id, at, actor, actor_kind, actor_person_id, action, target,
                                  target_person_id, outcome, rule, detail, pools)
        SELECT p_site, p_at, p_actor, p_actor_kind, p_actor_person, 'updateLogin', p_target, NULL, 'ACCEPTED',
               NULL, '', COALESCE(json_agg(json_build_array(c.m, c.u, c.u + c.d, c.t, c.t) ORDER BY c.m),
               '[]')::TEXT
          FROM unnest(m_ids, m_deltas, m_used, m_total) AS c(m, d, u, t);
    END IF;
    RETURN QUERY
    SELECT CASE WHEN fits THEN 'moved' ELSE 'short' END::TEXT, c.m, c.d, c.u, c.t,
           l.id, l.site_id, l.person_id, l.username, l.valid_until, l.profile_id, l.is_admin, l.occupying,
           l.created_at
      FROM (SELECT 1) one LEFT JOIN unnest(m_ids, m_deltas, m_used, m_total) AS c(m, d, u, t) ON true
     ORDER BY c.m;
END
$$;
