-- This run's repositories (an incremental run reads only what changed):
-- typed, with what cannot be read quarantined. `write: merge` then merges
-- them into the repositories of earlier runs by id.
CREATE OR REPLACE TEMP TABLE parsed AS
SELECT
    *,
    try_cast(id AS BIGINT) AS p_id,
    try_strptime(updated_at, '%Y-%m-%dT%H:%M:%SZ') AS p_updated_at,
    CASE
        WHEN _malformed IS NOT NULL THEN 'malformed_row'
        WHEN try_cast(id AS BIGINT) IS NULL THEN 'missing_id'
        WHEN try_strptime(updated_at, '%Y-%m-%dT%H:%M:%SZ') IS NULL THEN 'bad_updated_at'
    END AS _reason
FROM raw.repos;

CREATE OR REPLACE TABLE staging.repos_quarantine AS
SELECT id, full_name, updated_at, _reason, _source_file, _line FROM parsed WHERE _reason IS NOT NULL;

CREATE OR REPLACE TABLE staging.repos AS
SELECT
    p_id AS id,
    full_name,
    coalesce(language, 'none') AS language,
    coalesce(try_cast(stargazers_count AS BIGINT), 0) AS stars,
    coalesce(try_cast(forks_count AS BIGINT), 0) AS forks,
    coalesce(try_cast(archived AS BOOLEAN), false) AS archived,
    try_strptime(created_at, '%Y-%m-%dT%H:%M:%SZ') AS created_at,
    p_updated_at AS updated_at,
    json_extract_string(_record, '$.owner.login') AS owner
FROM parsed
WHERE _reason IS NULL
-- Read twice within the lag (or on two pages as repositories move): once.
QUALIFY row_number() OVER (PARTITION BY p_id ORDER BY p_updated_at DESC, _page, _line) = 1;

DROP TABLE parsed;
