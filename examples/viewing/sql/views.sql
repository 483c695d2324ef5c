-- Unpack the hits: the record is the JSON text of `_source`.
CREATE OR REPLACE TEMP TABLE unpacked AS
SELECT
    *,
    json_extract_string(_source, '$.contract_id') AS contract_id,
    json_extract_string(_source, '$.category') AS category,
    try_cast(json_extract_string(_source, '$.minutes') AS BIGINT) AS p_minutes,
    try_strptime(json_extract_string(_source, '$.started_at'), '%Y-%m-%dT%H:%M:%SZ') AS p_started_at
FROM raw.hits
WHERE _malformed IS NOT NULL OR json_valid(_source);

CREATE OR REPLACE TEMP TABLE parsed AS
SELECT
    *,
    CASE
        WHEN _malformed IS NOT NULL THEN 'malformed_row'
        WHEN contract_id IS NULL OR trim(contract_id) = '' THEN 'missing_contract'
        WHEN p_started_at IS NULL THEN 'bad_started_at'
        WHEN p_minutes IS NULL OR p_minutes < 0 THEN 'bad_minutes'
    END AS _reason
FROM unpacked;

CREATE OR REPLACE TABLE staging.views_quarantine AS
SELECT _id, _source, _reason, _source_file, _line FROM parsed WHERE _reason IS NOT NULL;

CREATE OR REPLACE TABLE staging.views AS
SELECT _id AS hit_id, contract_id, category, p_minutes AS minutes, p_started_at AS started_at
FROM parsed WHERE _reason IS NULL
QUALIFY row_number() OVER (PARTITION BY _id ORDER BY _source_file, _line) = 1;

DROP TABLE parsed;
DROP TABLE unpacked;
