-- Upgrade a piwheels database from schema level 0.22 to 0.23: written for
-- this project from the list of what changed between the two levels.
--
-- Run by our piw-initdb inside the same single transaction as any other step
-- (see create_piwheels.sql for the conventions: {username} and {dbname}
-- placeholders, no transaction control statements).
--
-- What 0.23 changed in the database: only get_project_data(). Each file in
-- its "files" object gained "pip_dependencies" (the file's dependencies with
-- tool 'pip', or {} when there are none), next to "apt_dependencies". Tables,
-- the view and every other function are as in 0.22.

-- Refuse to run on anything but a 0.22 database (when run by hand).
DO $guard$
DECLARE
    found_version TEXT;
BEGIN
    SELECT c.version INTO found_version FROM configuration AS c WHERE c.id = 1;
    IF found_version IS DISTINCT FROM '0.22' THEN
        RAISE EXCEPTION 'this script upgrades a 0.22 piwheels database, not %',
            COALESCE(found_version, 'an unversioned one');
    END IF;
END;
$guard$;

UPDATE configuration SET version = '0.23' WHERE id = 1;

-- Same signature and result as before, so the function is replaced in place
-- (its owner and privileges are kept; they are asserted again below).
CREATE OR REPLACE FUNCTION get_project_data(pkg TEXT)
    RETURNS JSON
    LANGUAGE SQL
    RETURNS NULL ON NULL INPUT
    SECURITY DEFINER
    SET search_path = public, pg_temp
AS $fn$
    WITH
    pairings AS (
        SELECT
            v.version,
            b.build_id,
            CASE
                WHEN b.build_id IS NULL THEN 1
                WHEN b.abi_tag = a.abi_tag THEN
                    CASE
                        WHEN NOT b.status THEN 2
                        WHEN f.abi_tag IS NULL THEN 1
                        WHEN f.abi_tag = a.abi_tag THEN 5
                        WHEN f.abi_tag IN ('none', 'abi3') THEN 4
                        ELSE -2
                    END
                ELSE
                    CASE
                        WHEN NOT b.status THEN -1
                        WHEN f.abi_tag = a.abi_tag THEN 4
                        WHEN f.abi_tag IN ('none', 'abi3') THEN 3
                        ELSE -1
                    END
            END AS score,
            CASE
                WHEN f.abi_tag IN ('none', 'abi3') THEN a.abi_tag
                ELSE COALESCE(f.abi_tag, b.abi_tag, a.abi_tag)
            END AS report_abi,
            CASE
                WHEN p.skip <> '' OR v.skip <> '' THEN 'skip'
                WHEN b.status AND f.build_id IS NOT NULL THEN 'success'
                WHEN NOT b.status THEN 'fail'
                WHEN b.build_id IS NULL THEN 'pending'
                ELSE 'error'
            END AS status
        FROM
            packages AS p
            JOIN versions AS v ON v.package = p.package
            CROSS JOIN build_abis AS a
            LEFT JOIN builds AS b
                ON b.package = v.package
                AND b.version = v.version
                AND b.abi_tag <= a.abi_tag
            LEFT JOIN files AS f ON f.build_id = b.build_id
        WHERE v.package = pkg AND a.skip = ''
    ),
    ranked AS (
        SELECT
            pr.*,
            ROW_NUMBER() OVER (
                PARTITION BY pr.version, pr.report_abi
                ORDER BY pr.score DESC, pr.build_id DESC NULLS LAST
            ) AS rank
        FROM pairings AS pr
    ),
    abis_by_version AS (
        SELECT
            r.version,
            json_object_agg(
                r.report_abi,
                json_build_object('status', r.status, 'build_id', r.build_id)
            ) AS abis
        FROM ranked AS r
        WHERE r.rank = 1 AND r.score >= 0
        GROUP BY r.version
    ),
    files_by_version AS (
        SELECT
            b.version,
            json_object_agg(
                f.filename,
                json_build_object(
                    'location', f.location,
                    'hash', f.filehash,
                    'size', f.filesize,
                    'abi_builder', b.abi_tag,
                    'abi_file', f.abi_tag,
                    'platform', f.platform_tag,
                    'requires_python', f.requires_python,
                    'apt_dependencies', (
                        SELECT COALESCE(json_agg(apt.dependency), '{}')
                        FROM (
                            SELECT d.dependency
                            FROM dependencies AS d
                            WHERE d.filename = f.filename AND d.tool = 'apt'
                            EXCEPT ALL
                            SELECT i.apt_package
                            FROM preinstalled_apt_packages AS i
                            WHERE i.abi_tag = f.abi_tag
                        ) AS apt
                    ),
                    'pip_dependencies', (
                        SELECT COALESCE(json_agg(d.dependency), '{}')
                        FROM dependencies AS d
                        WHERE d.filename = f.filename AND d.tool = 'pip'
                    )
                )
            ) AS files
        FROM builds AS b JOIN files AS f ON f.build_id = b.build_id
        WHERE b.package = pkg
        GROUP BY b.version
    )
    SELECT json_build_object(
        'name', (
            SELECT n.name
            FROM package_names AS n
            WHERE n.package = pkg
            ORDER BY n.seen DESC
            LIMIT 1
        ),
        'description', (
            SELECT p.description FROM packages AS p WHERE p.package = pkg
        ),
        'releases', (
            SELECT COALESCE(
                json_object_agg(
                    v.version,
                    json_build_object(
                        'yanked', v.yanked,
                        'released', v.released AT TIME ZONE 'UTC',
                        'skip', COALESCE(NULLIF(v.skip, ''), p.skip),
                        'files', COALESCE(fv.files, '{}'),
                        'abis', COALESCE(av.abis, '{}')
                    )
                ),
                '{}'
            )
            FROM
                packages AS p
                JOIN versions AS v ON v.package = p.package
                LEFT JOIN files_by_version AS fv ON fv.version = v.version
                LEFT JOIN abis_by_version AS av ON av.version = v.version
            WHERE p.package = pkg
        )
    );
$fn$;

REVOKE ALL ON FUNCTION get_project_data(TEXT) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION get_project_data(TEXT) TO {username};
