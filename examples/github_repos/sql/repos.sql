-- Upsert by id: the row with the latest updated_at wins (then the later page).
CREATE OR REPLACE TEMP TABLE parsed AS
SELECT
    *,
    try_cast(trim(id) AS BIGINT) AS p_id,
    try_strptime(trim(updated_at), '%Y-%m-%dT%H:%M:%SZ') AS p_updated_at,
    CASE
        WHEN _malformed IS NOT NULL THEN 'malformed_row'
        WHEN try_cast(trim(id) AS BIGINT) IS NULL THEN 'missing_id'
        WHEN try_strptime(trim(updated_at), '%Y-%m-%dT%H:%M:%SZ') IS NULL THEN 'bad_updated_at'
    END AS _reason
FROM raw.repos;

CREATE OR REPLACE TABLE staging.repos_quarantine AS
SELECT id, full_name, updated_at, _reason, _source_file, _line
FROM parsed WHERE _reason IS NOT NULL;

CREATE OR REPLACE TABLE staging.repos AS
SELECT p_id AS id, full_name, coalesce(language, 'none') AS language,
       coalesce(try_cast(stargazers_count AS BIGINT), 0) AS stars,
       nullif(topics, '') AS topics, p_updated_at AS updated_at
FROM parsed
WHERE _reason IS NULL AND p_updated_at <= {as_of}
QUALIFY row_number() OVER (PARTITION BY p_id ORDER BY p_updated_at DESC, _source_file DESC, _line DESC) = 1;

DROP TABLE parsed;
