-- Staging (silver) for the `events` source: parse the text landed in
-- raw.events, give each bad row one quarantine reason, deduplicate the rest.
-- Rules: docs/contract.md, "The default pipeline". Surrounding spaces are ignored when parsing.

-- Surrounding spaces (Unicode space separators, what DuckDB's trim removes)
-- are ignored. trim is costly, so it runs only on values that start or end
-- with a space or hold any character beyond ASCII (bytes <> characters).
CREATE OR REPLACE MACRO sluice_trim(s) AS
    CASE WHEN starts_with(s, ' ') OR ends_with(s, ' ') OR strlen(s) <> length(s)
        THEN trim(s) ELSE s END;

-- The parse keeps what staging needs, with each row's place (_source_file,
-- _line): the original text of the few quarantined rows is read back from
-- raw.events by it.
CREATE OR REPLACE TEMP TABLE stg_events_parsed AS
WITH trimmed AS (
    SELECT
        event_id, sku, region, _source_file, _line, _malformed,
        sluice_trim(event_id) AS t_id,
        sluice_trim(event_time) AS t_time,
        sluice_trim(user_id) AS t_user,
        sluice_trim(amount) AS t_amount,
        event_id IS NULL AND user_id IS NULL AND event_time IS NULL
            AND region IS NULL AND sku IS NULL AND amount IS NULL AS no_fields
    FROM raw.events
), parsed AS (
    SELECT
        *,
        -- The shape first (RE2's DFA, no captures). DuckDB's cast then reads
        -- the date (NULL if it does not exist), the clock and the fraction
        -- (cut off at microseconds) and ignores the offset, subtracted here
        -- from its fixed place at the end. (The reference test pins this.)
        CASE WHEN regexp_full_match(
            t_time,
            '[0-9]{4}-[0-9]{2}-[0-9]{2}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])'
        ) THEN
            try_cast(t_time AS TIMESTAMP)
            - to_minutes(CASE WHEN ends_with(t_time, 'Z') THEN 0 ELSE
                (CASE WHEN substr(t_time, -6, 1) = '-' THEN -1 ELSE 1 END)
                * (CAST(substr(t_time, -5, 2) AS BIGINT) * 60 + CAST(substr(t_time, -2, 2) AS BIGINT)) END)
        END AS p_event_time,
        CASE WHEN regexp_full_match(t_user, '-?[0-9]{1,18}')
            THEN CAST(t_user AS BIGINT) END AS p_user_id,
        CASE WHEN regexp_full_match(t_amount, '-?[0-9]+(\.[0-9]{1,2})?')
            THEN try_cast(t_amount AS DECIMAL(18, 2)) END AS p_amount
    FROM trimmed
)
SELECT
    event_id, sku, _source_file, _line,
    p_event_time, p_user_id, p_amount,
    nullif(lower(sluice_trim(region)), '') AS p_region,
    CASE
        -- A line that yielded no fields at all (not JSON) has nothing to judge.
        WHEN _malformed IS NOT NULL AND no_fields THEN 'malformed_row'
        WHEN t_id IS NULL OR t_id = '' THEN 'missing_event_id'
        WHEN t_time IS NULL OR t_time = '' THEN 'missing_event_time'
        WHEN p_event_time IS NULL THEN 'bad_event_time'
        WHEN t_user IS NULL OR t_user = '' THEN 'missing_user_id'
        WHEN p_user_id IS NULL THEN 'bad_user_id'
        WHEN t_amount IS NULL OR t_amount = '' THEN 'missing_amount'
        WHEN p_amount IS NULL THEN 'bad_amount'
        WHEN _malformed IS NOT NULL THEN 'malformed_row'
    END AS _reason
FROM parsed;

-- Quarantine: the original text, the reason and where the row came from.
CREATE SCHEMA IF NOT EXISTS staging;
CREATE OR REPLACE TABLE staging.events_quarantine AS
SELECT r.event_id, r.user_id, r.event_time, r.region, r.sku, r.amount,
       p._reason, _source_file, _line, r._malformed AS _detail
FROM (SELECT _source_file, _line, _reason FROM stg_events_parsed WHERE _reason IS NOT NULL) p
JOIN raw.events r USING (_source_file, _line);

-- One row per event_id: the latest, then the largest amount, then the
-- smallest user, region and sku; file and line only break exact ties.
-- Most ids occur once, so only the repeated ones pay for the ordering.
CREATE OR REPLACE TEMP TABLE stg_events_repeated AS
SELECT event_id FROM stg_events_parsed WHERE _reason IS NULL GROUP BY event_id HAVING count(*) > 1;

CREATE OR REPLACE TABLE staging.events AS
-- NOT MATERIALIZED: each branch scans the parse itself; a materialised CTE
-- costs 30% more staging time at 10M rows (bench/run.sh).
WITH valid AS NOT MATERIALIZED (
    SELECT
        event_id,
        p_user_id AS user_id,
        p_event_time AS event_time,
        p_region AS region,
        sku,
        p_amount AS amount,
        -- DECIMAL(18, 2) * 100 overflows from 1e14: such amounts are widened
        -- first (128-bit arithmetic, five times slower, so only for them).
        CASE WHEN p_amount > -1e14 AND p_amount < 1e14 THEN CAST(p_amount * 100 AS BIGINT)
            ELSE CAST(CAST(p_amount AS DECIMAL(38, 2)) * 100 AS BIGINT) END AS amount_cents,
        _source_file,
        _line
    FROM stg_events_parsed
    WHERE _reason IS NULL
)
SELECT * EXCLUDE (_line) FROM valid ANTI JOIN stg_events_repeated USING (event_id)
UNION ALL
SELECT * EXCLUDE (_line) FROM valid SEMI JOIN stg_events_repeated USING (event_id)
QUALIFY row_number() OVER (
    PARTITION BY event_id
    ORDER BY event_time DESC NULLS LAST, amount DESC NULLS LAST, user_id ASC NULLS LAST,
             region ASC NULLS LAST, sku ASC NULLS LAST, _source_file, _line
) = 1;

-- The parse is no longer needed: free its memory for the marts and checks.
DROP TABLE stg_events_parsed;
DROP TABLE stg_events_repeated;
DROP MACRO sluice_trim;
