-- piwheels database, schema level 0.23: written for this project.
--
-- The objects (tables, columns, types, defaults, keys, indexes, constraints,
-- the builds_pending view and the stored functions with their names,
-- arguments and results) are those of piwheels 0.23, so that either master,
-- piwheels' own or ours, can run on a database created by either initdb.
--
-- Conventions
-- ===========
-- * This file is run by our piw-initdb (src/initdb.rs), as a cluster
--   superuser, inside ONE transaction that the initdb opens and commits. The
--   file must therefore not contain BEGIN, COMMIT or ROLLBACK (initdb refuses
--   them).
-- * Two placeholders are replaced before a statement is run:
--     {username}  the unprivileged role the master connects as, already
--                 quoted as an SQL identifier (e.g. "piwheels");
--     {dbname}    the current database, quoted the same way.
--   Nothing else in braces is touched: unlike piwheels' scripts, which go
--   through Python's str.format, braces are written here as they are ('{}'
--   is an empty JSON object, not an escaped '{{}}').
-- * Statements are split by initdb's splitter, which understands -- and /* */
--   comments, '...', E'...' and "..." quoting and $tag$ dollar quoting.
-- * Every write the master does goes through a function below. Functions are
--   SECURITY DEFINER (they run as the owner, the superuser that ran initdb)
--   with a pinned search_path. The master's role may only SELECT from tables
--   and the view and EXECUTE the functions; PUBLIC gets nothing.
-- * Timestamps are TIMESTAMP WITHOUT TIME ZONE and hold UTC.

-- Access to the database and schema ------------------------------------------

REVOKE ALL PRIVILEGES ON DATABASE {dbname} FROM PUBLIC;
REVOKE ALL PRIVILEGES ON SCHEMA public FROM PUBLIC;
GRANT CONNECT, TEMP ON DATABASE {dbname} TO {username};
GRANT USAGE ON SCHEMA public TO {username};

-- configuration ----------------------------------------------------------------
-- One row (id = 1): the schema level of this database and the serial of the
-- last PyPI event the master processed.

CREATE TABLE configuration (
    id          INTEGER     DEFAULT 1     NOT NULL,
    version     VARCHAR(16) DEFAULT '0.6' NOT NULL,
    pypi_serial BIGINT      DEFAULT 0     NOT NULL,

    CONSTRAINT config_pk PRIMARY KEY (id)
);

INSERT INTO configuration (id, version) VALUES (1, '0.23');
GRANT SELECT ON configuration TO {username};

-- packages ---------------------------------------------------------------------
-- Every project known from PyPI, by its PEP 503 canonical name. A non-empty
-- skip holds the reason no version of the project is built ('deleted' marks a
-- project removed from PyPI). description is PyPI's summary.

CREATE TABLE packages (
    package     VARCHAR(200)              NOT NULL,
    skip        VARCHAR(100) DEFAULT ''   NOT NULL,
    description VARCHAR(200) DEFAULT ''   NOT NULL,

    CONSTRAINT packages_pk PRIMARY KEY (package)
);

GRANT SELECT ON packages TO {username};

-- package_names ----------------------------------------------------------------
-- Every spelling of a project's name seen on PyPI, with when it was last
-- seen. The most recently seen spelling is the display name.

CREATE TABLE package_names (
    package VARCHAR(200)                              NOT NULL,
    name    VARCHAR(200)                              NOT NULL,
    seen    TIMESTAMP    DEFAULT '1970-01-01 00:00:00' NOT NULL,

    CONSTRAINT package_names_pk PRIMARY KEY (name),
    CONSTRAINT package_names_package_fk FOREIGN KEY (package)
        REFERENCES packages ON DELETE CASCADE
);

CREATE INDEX package_names_package ON package_names (package, seen DESC);
GRANT SELECT ON package_names TO {username};

-- versions ---------------------------------------------------------------------
-- Every release of a project that has files on PyPI. skip works as for
-- packages; yanked mirrors PyPI's flag.

CREATE TABLE versions (
    package  VARCHAR(200)                              NOT NULL,
    version  VARCHAR(200)                              NOT NULL,
    released TIMESTAMP    DEFAULT '1970-01-01 00:00:00' NOT NULL,
    skip     VARCHAR(100) DEFAULT ''                    NOT NULL,
    yanked   BOOLEAN      DEFAULT false                 NOT NULL,

    CONSTRAINT versions_pk PRIMARY KEY (package, version),
    CONSTRAINT versions_package_fk FOREIGN KEY (package)
        REFERENCES packages ON DELETE CASCADE
);

CREATE INDEX versions_package ON versions (package);
GRANT SELECT ON versions TO {username};

-- build_abis -------------------------------------------------------------------
-- The CPython ABIs to build for (e.g. cp37m, cp39). Filled in by hand. A
-- non-empty skip retires an ABI. The pseudo-ABI 'none' is not allowed.

CREATE TABLE build_abis (
    abi_tag VARCHAR(100)            NOT NULL,
    skip    VARCHAR(100) DEFAULT '' NOT NULL,

    CONSTRAINT build_abis_pk PRIMARY KEY (abi_tag),
    CONSTRAINT build_abis_none_ck CHECK (abi_tag <> 'none')
);

GRANT SELECT ON build_abis TO {username};

-- builds -----------------------------------------------------------------------
-- One row per build attempt, successful (status true) or not. built_by is the
-- master-assigned id of the build slave (not stable across restarts), abi_tag
-- the slave's native ABI, built_at when the attempt was logged (UTC).

CREATE TABLE builds (
    build_id SERIAL                                           NOT NULL,
    package  VARCHAR(200)                                     NOT NULL,
    version  VARCHAR(200)                                     NOT NULL,
    built_by INTEGER                                          NOT NULL,
    built_at TIMESTAMP    DEFAULT (NOW() AT TIME ZONE 'UTC')  NOT NULL,
    duration INTERVAL                                         NOT NULL,
    status   BOOLEAN      DEFAULT true                        NOT NULL,
    abi_tag  VARCHAR(100)                                     NOT NULL,

    CONSTRAINT builds_pk PRIMARY KEY (build_id),
    CONSTRAINT builds_unique UNIQUE (package, version, built_at, built_by),
    CONSTRAINT builds_versions_fk FOREIGN KEY (package, version)
        REFERENCES versions ON DELETE CASCADE,
    CONSTRAINT builds_built_by_ck CHECK (built_by >= 0)
);

CREATE INDEX builds_timestamp ON builds (built_at DESC NULLS LAST);
CREATE INDEX builds_pkgver ON builds (package, version);
CREATE INDEX builds_pkgverid ON builds (build_id, package, version);
CREATE INDEX builds_pkgverabi ON builds (build_id, package, version, abi_tag);
GRANT SELECT ON builds TO {username};

-- files ------------------------------------------------------------------------
-- One row per wheel produced by a successful build. filesize and filehash
-- (SHA-256, hex) describe the content; the *_tag columns are the parts of the
-- wheel's filename, kept apart because queries select on them. location is
-- the URL prefix the wheel is served under.
--
-- The column order is part of the interface: the row type "files" is the
-- element type of log_build_success's build_files array.

CREATE TABLE files (
    filename            VARCHAR(255)                   NOT NULL,
    build_id            INTEGER                        NOT NULL,
    filesize            INTEGER                        NOT NULL,
    filehash            CHAR(64)                       NOT NULL,
    package_tag         VARCHAR(200)                   NOT NULL,
    package_version_tag VARCHAR(200)                   NOT NULL,
    py_version_tag      VARCHAR(100)                   NOT NULL,
    abi_tag             VARCHAR(100)                   NOT NULL,
    platform_tag        VARCHAR(100)                   NOT NULL,
    requires_python     VARCHAR(200)                   NULL,
    location            VARCHAR(100) DEFAULT '/simple' NOT NULL,

    CONSTRAINT files_pk PRIMARY KEY (filename),
    CONSTRAINT files_builds_fk FOREIGN KEY (build_id)
        REFERENCES builds (build_id) ON DELETE CASCADE
);

CREATE INDEX files_builds ON files (build_id);
CREATE INDEX files_size ON files (platform_tag, filesize)
    WHERE platform_tag <> 'linux_armv6l';
CREATE INDEX files_abi ON files (build_id, abi_tag);
CREATE INDEX files_packages ON files (package_tag);
GRANT SELECT ON files TO {username};

-- dependencies -----------------------------------------------------------------
-- What must be installed, and with which tool, for a wheel to work.

CREATE TABLE dependencies (
    filename   VARCHAR(255)               NOT NULL,
    tool       VARCHAR(10)  DEFAULT 'apt' NOT NULL,
    dependency VARCHAR(255)               NOT NULL,

    CONSTRAINT dependencies_pk PRIMARY KEY (filename, tool, dependency),
    CONSTRAINT dependencies_files_fk FOREIGN KEY (filename)
        REFERENCES files (filename) ON DELETE CASCADE,
    CONSTRAINT dependencies_tool_ck CHECK (tool IN ('apt', 'pip', ''))
);

GRANT SELECT ON dependencies TO {username};

-- Access logs ------------------------------------------------------------------
-- Written by the log_* functions from what the web server's log reader sends.
-- No keys: these are append-only logs.

CREATE TABLE downloads (
    filename           VARCHAR(255)              NOT NULL,
    accessed_by        INET                      NOT NULL,
    accessed_at        TIMESTAMP                 NOT NULL,
    arch               VARCHAR(100) DEFAULT NULL,
    distro_name        VARCHAR(100) DEFAULT NULL,
    distro_version     VARCHAR(100) DEFAULT NULL,
    os_name            VARCHAR(100) DEFAULT NULL,
    os_version         VARCHAR(100) DEFAULT NULL,
    py_name            VARCHAR(100) DEFAULT NULL,
    py_version         VARCHAR(100) DEFAULT NULL,
    installer_name     VARCHAR(20)  DEFAULT NULL,
    installer_version  VARCHAR(100) DEFAULT NULL,
    setuptools_version VARCHAR(100) DEFAULT NULL
);

CREATE INDEX downloads_files ON downloads (filename);
CREATE INDEX downloads_accessed_at ON downloads (accessed_at DESC);
GRANT SELECT ON downloads TO {username};

CREATE TABLE searches (
    package            VARCHAR(200)              NOT NULL,
    accessed_by        INET                      NOT NULL,
    accessed_at        TIMESTAMP                 NOT NULL,
    arch               VARCHAR(100) DEFAULT NULL,
    distro_name        VARCHAR(100) DEFAULT NULL,
    distro_version     VARCHAR(100) DEFAULT NULL,
    os_name            VARCHAR(100) DEFAULT NULL,
    os_version         VARCHAR(100) DEFAULT NULL,
    py_name            VARCHAR(100) DEFAULT NULL,
    py_version         VARCHAR(100) DEFAULT NULL,
    installer_name     VARCHAR(20)  DEFAULT NULL,
    installer_version  VARCHAR(100) DEFAULT NULL,
    setuptools_version VARCHAR(100) DEFAULT NULL
);

CREATE INDEX searches_package ON searches (package);
CREATE INDEX searches_accessed_at ON searches (accessed_at DESC);
GRANT SELECT ON searches TO {username};

CREATE TABLE project_page_hits (
    package     VARCHAR(200)                NOT NULL,
    accessed_by INET                        NOT NULL,
    accessed_at TIMESTAMP                   NOT NULL,
    user_agent  VARCHAR(2000),
    bot         BOOLEAN       DEFAULT false NOT NULL
);

CREATE INDEX project_page_hits_package ON project_page_hits (package);
CREATE INDEX project_page_hits_accessed_at
    ON project_page_hits (accessed_at DESC);
GRANT SELECT ON project_page_hits TO {username};

CREATE TABLE project_json_downloads (
    package     VARCHAR(200)  NOT NULL,
    accessed_by INET          NOT NULL,
    accessed_at TIMESTAMP     NOT NULL,
    user_agent  VARCHAR(2000)
);

CREATE INDEX project_json_downloads_package
    ON project_json_downloads (package);
CREATE INDEX project_json_downloads_accessed_at
    ON project_json_downloads (accessed_at DESC);
GRANT SELECT ON project_json_downloads TO {username};

-- (The page index keeps the name piwheels gave it: web_page_hits_package.)
CREATE TABLE web_page_hits (
    page        VARCHAR(30)                 NOT NULL,
    accessed_by INET                        NOT NULL,
    accessed_at TIMESTAMP                   NOT NULL,
    user_agent  VARCHAR(2000),
    bot         BOOLEAN       DEFAULT false NOT NULL
);

CREATE INDEX web_page_hits_package ON web_page_hits (page);
CREATE INDEX web_page_hits_accessed_at ON web_page_hits (accessed_at DESC);
GRANT SELECT ON web_page_hits TO {username};

-- rewrites_pending -------------------------------------------------------------
-- The web writer's de-duplication buffer, saved at shutdown and read back at
-- start-up. The row type is the element type of save_rewrites_pending's
-- argument. No foreign key: a buffered package may have been deleted since.

CREATE TABLE rewrites_pending (
    package  VARCHAR(200) NOT NULL,
    added_at TIMESTAMP    NOT NULL,
    command  VARCHAR(8)   NOT NULL,

    CONSTRAINT rewrites_pending_pk PRIMARY KEY (package),
    CONSTRAINT rewrites_pending_command_ck
        CHECK (command IN ('PROJECT', 'BOTH'))
);

CREATE INDEX rewrites_pending_added ON rewrites_pending (added_at);
GRANT SELECT ON rewrites_pending TO {username};

-- preinstalled_apt_packages ----------------------------------------------------
-- apt packages already present in the "Lite" OS image that goes with an ABI;
-- they are left out of the dependencies shown for wheels of that ABI.

CREATE TABLE preinstalled_apt_packages (
    abi_tag     VARCHAR(100) NOT NULL,
    apt_package VARCHAR(255) NOT NULL,

    CONSTRAINT preinstalled_apt_packages_pk PRIMARY KEY (abi_tag, apt_package),
    CONSTRAINT preinstalled_apt_packages_abi_tag_fk FOREIGN KEY (abi_tag)
        REFERENCES build_abis (abi_tag) ON DELETE CASCADE
);

CREATE INDEX preinstalled_apt_packages_abi_tag
    ON preinstalled_apt_packages (abi_tag);
GRANT SELECT ON preinstalled_apt_packages TO {username};

-- builds_pending ---------------------------------------------------------------
-- The build queue: one row per (package, version) that still needs a build,
-- with the single ABI to try next and its position in that ABI's queue.
--
-- wanted:  every unskipped version of every unskipped package, once per
--          unskipped build ABI;
-- covered: (multiset) a successful build with an ABI-less ('none') wheel
--          covers the version for every row of build_abis; any other build
--          covers the ABI of each of its files, or the builder's ABI when it
--          has no files (a failure).
-- The lowest ABI (by string order) left of wanted EXCEPT ALL covered is the
-- one offered; within an ABI, older releases come first.
--
-- Kept as piwheels has it: a success whose wheels are all 'abi3' (or any tag
-- that is not a build ABI) covers nothing, so that version stays queued.

CREATE VIEW builds_pending AS
SELECT
    next.abi_tag,
    ROW_NUMBER() OVER (
        PARTITION BY next.abi_tag ORDER BY next.released
    ) AS position,
    next.package,
    next.version
FROM (
    SELECT
        todo.package,
        todo.version,
        ver.released,
        MIN(todo.abi_tag) AS abi_tag
    FROM (
        SELECT wv.package, wv.version, wa.abi_tag
        FROM
            packages AS wp
            JOIN versions AS wv ON wv.package = wp.package
            CROSS JOIN build_abis AS wa
        WHERE wv.skip = '' AND wp.skip = '' AND wa.skip = ''

        EXCEPT ALL

        (
            SELECT nb.package, nb.version, na.abi_tag
            FROM
                builds AS nb
                JOIN files AS nf ON nf.build_id = nb.build_id
                CROSS JOIN build_abis AS na
            WHERE nf.abi_tag = 'none'

            UNION ALL

            SELECT ob.package, ob.version, COALESCE(ofl.abi_tag, ob.abi_tag)
            FROM
                builds AS ob
                LEFT JOIN files AS ofl ON ofl.build_id = ob.build_id
            WHERE ofl.build_id IS NULL OR ofl.abi_tag <> 'none'
        )
    ) AS todo
    JOIN versions AS ver
        ON ver.package = todo.package AND ver.version = todo.version
    GROUP BY todo.package, todo.version, ver.released
) AS next;

GRANT SELECT ON builds_pending TO {username};

-- =============================================================================
-- Functions. All run as their owner with search_path pinned; EXECUTE is
-- revoked from PUBLIC and granted to the master's role after each one.
-- =============================================================================

-- PyPI serial ------------------------------------------------------------------

CREATE FUNCTION get_pypi_serial()
    RETURNS BIGINT
    LANGUAGE SQL
    RETURNS NULL ON NULL INPUT
    SECURITY DEFINER
    SET search_path = public, pg_temp
AS $fn$
    SELECT c.pypi_serial FROM configuration AS c WHERE c.id = 1;
$fn$;

REVOKE ALL ON FUNCTION get_pypi_serial() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION get_pypi_serial() TO {username};

-- The serial only moves forward; an attempt to lower it is an integrity
-- error. (The argument is INTEGER although the column is BIGINT, as in
-- piwheels.)
CREATE FUNCTION set_pypi_serial(new_serial INTEGER)
    RETURNS VOID
    LANGUAGE plpgsql
    CALLED ON NULL INPUT
    SECURITY DEFINER
    SET search_path = public, pg_temp
AS $fn$
DECLARE
    current_serial BIGINT;
BEGIN
    SELECT c.pypi_serial INTO current_serial FROM configuration AS c;
    IF current_serial > new_serial THEN
        RAISE EXCEPTION integrity_constraint_violation
            USING MESSAGE = 'pypi_serial number cannot go backwards';
    END IF;
    UPDATE configuration SET pypi_serial = new_serial WHERE id = 1;
END;
$fn$;

REVOKE ALL ON FUNCTION set_pypi_serial(INTEGER) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION set_pypi_serial(INTEGER) TO {username};

-- Packages, names and versions -------------------------------------------------

-- True when the package was added, false when it already existed.
CREATE FUNCTION add_new_package(
    package TEXT,
    skip TEXT = '',
    description TEXT = ''
)
    RETURNS BOOLEAN
    LANGUAGE plpgsql
    CALLED ON NULL INPUT
    SECURITY DEFINER
    SET search_path = public, pg_temp
AS $fn$
BEGIN
    INSERT INTO packages AS p (package, skip, description)
    VALUES ($1, $2, $3);
    RETURN true;
EXCEPTION
    WHEN unique_violation THEN
        RETURN false;
END;
$fn$;

REVOKE ALL ON FUNCTION add_new_package(TEXT, TEXT, TEXT) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION add_new_package(TEXT, TEXT, TEXT) TO {username};

-- True when the version was added, false when it already existed. A NULL
-- release time is stored as the epoch.
CREATE FUNCTION add_new_package_version(
    package TEXT,
    version TEXT,
    released TIMESTAMP = NULL,
    skip TEXT = ''
)
    RETURNS BOOLEAN
    LANGUAGE plpgsql
    CALLED ON NULL INPUT
    SECURITY DEFINER
    SET search_path = public, pg_temp
AS $fn$
BEGIN
    INSERT INTO versions AS v (package, version, released, skip)
    VALUES ($1, $2, COALESCE($3, TIMESTAMP '1970-01-01 00:00:00'), $4);
    RETURN true;
EXCEPTION
    WHEN unique_violation THEN
        RETURN false;
END;
$fn$;

REVOKE ALL ON FUNCTION add_new_package_version(TEXT, TEXT, TIMESTAMP, TEXT)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION add_new_package_version(TEXT, TEXT, TIMESTAMP, TEXT)
    TO {username};

-- Records a spelling of a package's name, or refreshes when it was last seen.
CREATE FUNCTION add_package_name(
    canon_name TEXT,
    alt_name TEXT,
    last_seen TIMESTAMP
)
    RETURNS VOID
    LANGUAGE SQL
    CALLED ON NULL INPUT
    SECURITY DEFINER
    SET search_path = public, pg_temp
AS $fn$
    INSERT INTO package_names (package, name, seen)
    VALUES (canon_name, alt_name, last_seen)
    ON CONFLICT (name) DO UPDATE SET seen = EXCLUDED.seen;
$fn$;

REVOKE ALL ON FUNCTION add_package_name(TEXT, TEXT, TIMESTAMP) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION add_package_name(TEXT, TEXT, TIMESTAMP)
    TO {username};

-- Every recorded name of the package other than its canonical name.
CREATE FUNCTION get_package_aliases(pkg TEXT)
    RETURNS TABLE(
        name package_names.name%TYPE
    )
    LANGUAGE SQL
    RETURNS NULL ON NULL INPUT
    SECURITY DEFINER
    SET search_path = public, pg_temp
AS $fn$
    SELECT n.name
    FROM package_names AS n
    WHERE n.package = pkg AND n.name <> pkg;
$fn$;

REVOKE ALL ON FUNCTION get_package_aliases(TEXT) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION get_package_aliases(TEXT) TO {username};

CREATE FUNCTION set_package_description(pkg TEXT, dsc TEXT)
    RETURNS VOID
    LANGUAGE SQL
    CALLED ON NULL INPUT
    SECURITY DEFINER
    SET search_path = public, pg_temp
AS $fn$
    UPDATE packages SET description = dsc WHERE package = pkg;
$fn$;

REVOKE ALL ON FUNCTION set_package_description(TEXT, TEXT) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION set_package_description(TEXT, TEXT) TO {username};

-- A non-empty reason stops builds; '' lifts the skip.
CREATE FUNCTION skip_package(pkg TEXT, reason TEXT)
    RETURNS VOID
    LANGUAGE SQL
    CALLED ON NULL INPUT
    SECURITY DEFINER
    SET search_path = public, pg_temp
AS $fn$
    UPDATE packages SET skip = reason WHERE package = pkg;
$fn$;

REVOKE ALL ON FUNCTION skip_package(TEXT, TEXT) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION skip_package(TEXT, TEXT) TO {username};

CREATE FUNCTION skip_package_version(pkg TEXT, ver TEXT, reason TEXT)
    RETURNS VOID
    LANGUAGE SQL
    CALLED ON NULL INPUT
    SECURITY DEFINER
    SET search_path = public, pg_temp
AS $fn$
    UPDATE versions SET skip = reason WHERE package = pkg AND version = ver;
$fn$;

REVOKE ALL ON FUNCTION skip_package_version(TEXT, TEXT, TEXT) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION skip_package_version(TEXT, TEXT, TEXT)
    TO {username};

-- Removes the package; foreign keys take its names, versions, builds, files
-- and dependencies with it.
CREATE FUNCTION delete_package(pkg TEXT)
    RETURNS VOID
    LANGUAGE SQL
    CALLED ON NULL INPUT
    SECURITY DEFINER
    SET search_path = public, pg_temp
AS $fn$
    DELETE FROM packages WHERE package = pkg;
$fn$;

REVOKE ALL ON FUNCTION delete_package(TEXT) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION delete_package(TEXT) TO {username};

-- Removes one version with its builds, files and dependencies.
CREATE FUNCTION delete_version(pkg TEXT, ver TEXT)
    RETURNS VOID
    LANGUAGE SQL
    CALLED ON NULL INPUT
    SECURITY DEFINER
    SET search_path = public, pg_temp
AS $fn$
    DELETE FROM versions WHERE package = pkg AND version = ver;
$fn$;

REVOKE ALL ON FUNCTION delete_version(TEXT, TEXT) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION delete_version(TEXT, TEXT) TO {username};

CREATE FUNCTION yank_version(pkg TEXT, ver TEXT)
    RETURNS VOID
    LANGUAGE SQL
    CALLED ON NULL INPUT
    SECURITY DEFINER
    SET search_path = public, pg_temp
AS $fn$
    UPDATE versions SET yanked = true WHERE package = pkg AND version = ver;
$fn$;

REVOKE ALL ON FUNCTION yank_version(TEXT, TEXT) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION yank_version(TEXT, TEXT) TO {username};

CREATE FUNCTION unyank_version(pkg TEXT, ver TEXT)
    RETURNS VOID
    LANGUAGE SQL
    CALLED ON NULL INPUT
    SECURITY DEFINER
    SET search_path = public, pg_temp
AS $fn$
    UPDATE versions SET yanked = false WHERE package = pkg AND version = ver;
$fn$;

REVOKE ALL ON FUNCTION unyank_version(TEXT, TEXT) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION unyank_version(TEXT, TEXT) TO {username};

-- Existence tests (skipped rows count as existing) -----------------------------

CREATE FUNCTION test_package(pkg TEXT)
    RETURNS BOOLEAN
    LANGUAGE SQL
    RETURNS NULL ON NULL INPUT
    SECURITY DEFINER
    SET search_path = public, pg_temp
AS $fn$
    SELECT COUNT(*) = 1 FROM packages AS p WHERE p.package = pkg;
$fn$;

REVOKE ALL ON FUNCTION test_package(TEXT) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION test_package(TEXT) TO {username};

CREATE FUNCTION package_marked_deleted(pkg TEXT)
    RETURNS BOOLEAN
    LANGUAGE SQL
    RETURNS NULL ON NULL INPUT
    SECURITY DEFINER
    SET search_path = public, pg_temp
AS $fn$
    SELECT COUNT(*) = 1
    FROM packages AS p
    WHERE p.package = pkg AND p.skip = 'deleted';
$fn$;

REVOKE ALL ON FUNCTION package_marked_deleted(TEXT) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION package_marked_deleted(TEXT) TO {username};

CREATE FUNCTION test_package_version(pkg TEXT, ver TEXT)
    RETURNS BOOLEAN
    LANGUAGE SQL
    RETURNS NULL ON NULL INPUT
    SECURITY DEFINER
    SET search_path = public, pg_temp
AS $fn$
    SELECT COUNT(*) = 1
    FROM versions AS v
    WHERE v.package = pkg AND v.version = ver;
$fn$;

REVOKE ALL ON FUNCTION test_package_version(TEXT, TEXT) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION test_package_version(TEXT, TEXT) TO {username};

CREATE FUNCTION get_versions_deleted(pkg TEXT)
    RETURNS TABLE(
        version versions.version%TYPE
    )
    LANGUAGE SQL
    RETURNS NULL ON NULL INPUT
    SECURITY DEFINER
    SET search_path = public, pg_temp
AS $fn$
    SELECT v.version
    FROM versions AS v
    WHERE v.package = pkg AND v.skip = 'deleted';
$fn$;

REVOKE ALL ON FUNCTION get_versions_deleted(TEXT) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION get_versions_deleted(TEXT) TO {username};

-- Access logging ---------------------------------------------------------------

CREATE FUNCTION log_download(
    filename TEXT,
    accessed_by INET,
    accessed_at TIMESTAMP,
    arch TEXT = NULL,
    distro_name TEXT = NULL,
    distro_version TEXT = NULL,
    os_name TEXT = NULL,
    os_version TEXT = NULL,
    py_name TEXT = NULL,
    py_version TEXT = NULL,
    installer_name TEXT = NULL,
    installer_version TEXT = NULL,
    setuptools_version TEXT = NULL
)
    RETURNS VOID
    LANGUAGE SQL
    CALLED ON NULL INPUT
    SECURITY DEFINER
    SET search_path = public, pg_temp
AS $fn$
    INSERT INTO downloads (
        filename, accessed_by, accessed_at, arch,
        distro_name, distro_version, os_name, os_version,
        py_name, py_version,
        installer_name, installer_version, setuptools_version
    )
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13);
$fn$;

REVOKE ALL ON FUNCTION log_download(
    TEXT, INET, TIMESTAMP,
    TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT
) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION log_download(
    TEXT, INET, TIMESTAMP,
    TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT
) TO {username};

CREATE FUNCTION log_search(
    package TEXT,
    accessed_by INET,
    accessed_at TIMESTAMP,
    arch TEXT = NULL,
    distro_name TEXT = NULL,
    distro_version TEXT = NULL,
    os_name TEXT = NULL,
    os_version TEXT = NULL,
    py_name TEXT = NULL,
    py_version TEXT = NULL,
    installer_name TEXT = NULL,
    installer_version TEXT = NULL,
    setuptools_version TEXT = NULL
)
    RETURNS VOID
    LANGUAGE SQL
    CALLED ON NULL INPUT
    SECURITY DEFINER
    SET search_path = public, pg_temp
AS $fn$
    INSERT INTO searches (
        package, accessed_by, accessed_at, arch,
        distro_name, distro_version, os_name, os_version,
        py_name, py_version,
        installer_name, installer_version, setuptools_version
    )
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13);
$fn$;

REVOKE ALL ON FUNCTION log_search(
    TEXT, INET, TIMESTAMP,
    TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT
) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION log_search(
    TEXT, INET, TIMESTAMP,
    TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT
) TO {username};

CREATE FUNCTION log_project(
    package TEXT,
    accessed_by INET,
    accessed_at TIMESTAMP,
    user_agent TEXT
)
    RETURNS VOID
    LANGUAGE SQL
    CALLED ON NULL INPUT
    SECURITY DEFINER
    SET search_path = public, pg_temp
AS $fn$
    INSERT INTO project_page_hits (package, accessed_by, accessed_at, user_agent)
    VALUES ($1, $2, $3, $4);
$fn$;

REVOKE ALL ON FUNCTION log_project(TEXT, INET, TIMESTAMP, TEXT) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION log_project(TEXT, INET, TIMESTAMP, TEXT)
    TO {username};

CREATE FUNCTION log_json(
    package TEXT,
    accessed_by INET,
    accessed_at TIMESTAMP,
    user_agent TEXT
)
    RETURNS VOID
    LANGUAGE SQL
    CALLED ON NULL INPUT
    SECURITY DEFINER
    SET search_path = public, pg_temp
AS $fn$
    INSERT INTO project_json_downloads (
        package, accessed_by, accessed_at, user_agent
    )
    VALUES ($1, $2, $3, $4);
$fn$;

REVOKE ALL ON FUNCTION log_json(TEXT, INET, TIMESTAMP, TEXT) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION log_json(TEXT, INET, TIMESTAMP, TEXT) TO {username};

CREATE FUNCTION log_page(
    page TEXT,
    accessed_by INET,
    accessed_at TIMESTAMP,
    user_agent TEXT
)
    RETURNS VOID
    LANGUAGE SQL
    CALLED ON NULL INPUT
    SECURITY DEFINER
    SET search_path = public, pg_temp
AS $fn$
    INSERT INTO web_page_hits (page, accessed_by, accessed_at, user_agent)
    VALUES ($1, $2, $3, $4);
$fn$;

REVOKE ALL ON FUNCTION log_page(TEXT, INET, TIMESTAMP, TEXT) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION log_page(TEXT, INET, TIMESTAMP, TEXT) TO {username};

-- Builds -----------------------------------------------------------------------

-- Logs a successful build with its wheels and their dependencies and returns
-- the new build_id. The build_id inside build_files is ignored (send NULL).
-- A wheel whose filename is already known is taken over by this build: the
-- old files row goes (with its dependencies) before the new one is added.
--
-- Kept as piwheels has it: the guard against an empty build_files compares
-- ARRAY_LENGTH with 0, but ARRAY_LENGTH of an empty array is NULL, so the
-- guard never fires and a success with no files is accepted.
CREATE FUNCTION log_build_success(
    package TEXT,
    version TEXT,
    built_by INTEGER,
    duration INTERVAL,
    abi_tag TEXT,
    build_files files ARRAY,
    build_deps dependencies ARRAY
)
    RETURNS INTEGER
    LANGUAGE plpgsql
    CALLED ON NULL INPUT
    SECURITY DEFINER
    SET search_path = public, pg_temp
AS $fn$
DECLARE
    logged_id INTEGER;
BEGIN
    IF ARRAY_LENGTH(build_files, 1) = 0 THEN
        RAISE EXCEPTION integrity_constraint_violation
            USING MESSAGE = 'Successful build must include at least one file';
    END IF;

    INSERT INTO builds AS b (package, version, built_by, duration, status, abi_tag)
    VALUES ($1, $2, $3, $4, true, $5)
    RETURNING b.build_id INTO logged_id;

    DELETE FROM files AS old
    WHERE old.filename IN (SELECT nf.filename FROM UNNEST(build_files) AS nf);

    INSERT INTO files (
        filename, build_id, filesize, filehash,
        package_tag, package_version_tag, py_version_tag, abi_tag,
        platform_tag, requires_python, location
    )
    SELECT
        nf.filename, logged_id, nf.filesize, nf.filehash,
        nf.package_tag, nf.package_version_tag, nf.py_version_tag, nf.abi_tag,
        nf.platform_tag, nf.requires_python, COALESCE(nf.location, '/simple')
    FROM UNNEST(build_files) AS nf;

    INSERT INTO dependencies (filename, tool, dependency)
    SELECT nd.filename, nd.tool, nd.dependency
    FROM UNNEST(build_deps) AS nd;

    RETURN logged_id;
END;
$fn$;

REVOKE ALL ON FUNCTION log_build_success(
    TEXT, TEXT, INTEGER, INTERVAL, TEXT, files ARRAY, dependencies ARRAY
) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION log_build_success(
    TEXT, TEXT, INTEGER, INTERVAL, TEXT, files ARRAY, dependencies ARRAY
) TO {username};

-- Logs a failed build and returns its build_id.
CREATE FUNCTION log_build_failure(
    package TEXT,
    version TEXT,
    built_by INTEGER,
    duration INTERVAL,
    abi_tag TEXT
)
    RETURNS INTEGER
    LANGUAGE plpgsql
    CALLED ON NULL INPUT
    SECURITY DEFINER
    SET search_path = public, pg_temp
AS $fn$
DECLARE
    logged_id INTEGER;
BEGIN
    INSERT INTO builds AS b (package, version, built_by, duration, status, abi_tag)
    VALUES ($1, $2, $3, $4, false, $5)
    RETURNING b.build_id INTO logged_id;
    RETURN logged_id;
END;
$fn$;

REVOKE ALL ON FUNCTION log_build_failure(TEXT, TEXT, INTEGER, INTERVAL, TEXT)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION log_build_failure(TEXT, TEXT, INTEGER, INTERVAL, TEXT)
    TO {username};

-- Forgets every build of a version; files and dependencies follow by cascade.
CREATE FUNCTION delete_build(pkg TEXT, ver TEXT)
    RETURNS VOID
    LANGUAGE SQL
    CALLED ON NULL INPUT
    SECURITY DEFINER
    SET search_path = public, pg_temp
AS $fn$
    DELETE FROM builds AS b WHERE b.package = pkg AND b.version = ver;
$fn$;

REVOKE ALL ON FUNCTION delete_build(TEXT, TEXT) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION delete_build(TEXT, TEXT) TO {username};

-- The build queue: up to lim entries per ABI, by ABI then queue position.
CREATE FUNCTION get_build_queue(lim INTEGER)
    RETURNS TABLE(
        abi_tag builds_pending.abi_tag%TYPE,
        package builds_pending.package%TYPE,
        version builds_pending.version%TYPE
    )
    LANGUAGE SQL
    RETURNS NULL ON NULL INPUT
    SECURITY DEFINER
    SET search_path = public, pg_temp
AS $fn$
    SELECT q.abi_tag, q.package, q.version
    FROM builds_pending AS q
    WHERE q.position <= lim
    ORDER BY q.abi_tag, q.position;
$fn$;

REVOKE ALL ON FUNCTION get_build_queue(INTEGER) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION get_build_queue(INTEGER) TO {username};

-- Statistics -------------------------------------------------------------------

-- One row. builds_time ignores any single duration of a week or more (a
-- builder with an unsynchronised clock); builds_size leaves out armv6l files
-- (links to the armv7l ones); downloads only looks at the last 30 days so
-- that the query stays cheap (see get_initial_statistics for the total).
CREATE FUNCTION get_statistics()
    RETURNS TABLE(
        builds_time          INTERVAL,
        builds_size          BIGINT,
        packages_built       INTEGER,
        files_count          INTEGER,
        new_last_hour        INTEGER,
        downloads_last_month INTEGER,
        downloads_last_hour  INTEGER
    )
    LANGUAGE SQL
    RETURNS NULL ON NULL INPUT
    SECURITY DEFINER
    SET search_path = public, pg_temp
AS $fn$
    WITH
    now_utc AS (
        SELECT CURRENT_TIMESTAMP AT TIME ZONE 'UTC' AS t
    ),
    build_time AS (
        SELECT COALESCE(
            SUM(b.duration) FILTER (WHERE b.duration < INTERVAL '1 week'),
            INTERVAL '0'
        ) AS total
        FROM builds AS b
    ),
    file_counts AS (
        SELECT
            COUNT(*) AS n_files,
            COUNT(DISTINCT f.package_tag) AS n_packages
        FROM files AS f
    ),
    file_size AS (
        SELECT COALESCE(SUM(f.filesize), 0) AS total
        FROM files AS f
        WHERE f.platform_tag <> 'linux_armv6l'
    ),
    recent_downloads AS (
        SELECT
            COUNT(*) AS month,
            COUNT(*) FILTER (
                WHERE d.accessed_at > n.t - INTERVAL '1 hour'
            ) AS hour
        FROM downloads AS d, now_utc AS n
        WHERE d.accessed_at > n.t - INTERVAL '30 days'
    ),
    new_versions AS (
        SELECT COUNT(*) AS n
        FROM versions AS v, now_utc AS n
        WHERE v.released > n.t - INTERVAL '1 hour'
    )
    SELECT
        bt.total,
        fs.total,
        CAST(fc.n_packages AS INTEGER),
        CAST(fc.n_files AS INTEGER),
        CAST(nv.n AS INTEGER),
        CAST(rd.month AS INTEGER),
        CAST(rd.hour AS INTEGER)
    FROM build_time AS bt, file_counts AS fc, file_size AS fs,
         new_versions AS nv, recent_downloads AS rd;
$fn$;

REVOKE ALL ON FUNCTION get_statistics() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION get_statistics() TO {username};

-- The all-time download count: a full count of downloads, so possibly slow.
-- The master runs it once at start-up and adds to it as downloads arrive.
CREATE FUNCTION get_initial_statistics()
    RETURNS TABLE(
        downloads_all BIGINT
    )
    LANGUAGE SQL
    RETURNS NULL ON NULL INPUT
    SECURITY DEFINER
    SET search_path = public, pg_temp
AS $fn$
    SELECT COUNT(*) FROM downloads;
$fn$;

REVOKE ALL ON FUNCTION get_initial_statistics() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION get_initial_statistics() TO {username};

-- Builds logged in the last hour, per active build ABI (zero included).
CREATE FUNCTION get_builds_last_hour()
    RETURNS TABLE(
        abi_tag build_abis.abi_tag%TYPE,
        builds  INTEGER
    )
    LANGUAGE SQL
    RETURNS NULL ON NULL INPUT
    SECURITY DEFINER
    SET search_path = public, pg_temp
AS $fn$
    SELECT
        a.abi_tag,
        CAST(COUNT(b.build_id) AS INTEGER)
    FROM
        build_abis AS a
        LEFT JOIN builds AS b
            ON b.abi_tag = a.abi_tag
            AND b.built_at > CURRENT_TIMESTAMP AT TIME ZONE 'UTC' - INTERVAL '1 hour'
    WHERE a.skip = ''
    GROUP BY a.abi_tag;
$fn$;

REVOKE ALL ON FUNCTION get_builds_last_hour() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION get_builds_last_hour() TO {username};

-- Per package: downloads of its wheels in the last 30 days and in all time
-- (for the search index).
CREATE FUNCTION get_search_index()
    RETURNS TABLE(
        package packages.package%TYPE,
        downloads_recent INTEGER,
        downloads_all INTEGER
    )
    LANGUAGE SQL
    RETURNS NULL ON NULL INPUT
    SECURITY DEFINER
    SET search_path = public, pg_temp
AS $fn$
    SELECT
        p.package,
        CAST(COUNT(d.filename) FILTER (
            WHERE d.accessed_at >
                CURRENT_TIMESTAMP AT TIME ZONE 'UTC' - INTERVAL '30 days'
        ) AS INTEGER),
        CAST(COUNT(d.filename) AS INTEGER)
    FROM
        packages AS p
        LEFT JOIN (
            builds AS b
            JOIN files AS f ON f.build_id = b.build_id
            JOIN downloads AS d ON d.filename = f.filename
        ) ON b.package = p.package
    GROUP BY p.package;
$fn$;

REVOKE ALL ON FUNCTION get_search_index() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION get_search_index() TO {username};

-- Files ------------------------------------------------------------------------

-- Name and hash of every wheel of the package from a successful build.
CREATE FUNCTION get_package_files(pkg TEXT)
    RETURNS TABLE(
        filename files.filename%TYPE,
        filehash files.filehash%TYPE
    )
    LANGUAGE SQL
    RETURNS NULL ON NULL INPUT
    SECURITY DEFINER
    SET search_path = public, pg_temp
AS $fn$
    SELECT f.filename, f.filehash
    FROM builds AS b JOIN files AS f ON f.build_id = b.build_id
    WHERE b.status AND b.package = pkg;
$fn$;

REVOKE ALL ON FUNCTION get_package_files(TEXT) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION get_package_files(TEXT) TO {username};

-- Names of the wheels of one version from successful builds.
CREATE FUNCTION get_version_files(pkg TEXT, ver TEXT)
    RETURNS TABLE(
        filename files.filename%TYPE
    )
    LANGUAGE SQL
    RETURNS NULL ON NULL INPUT
    SECURITY DEFINER
    SET search_path = public, pg_temp
AS $fn$
    SELECT f.filename
    FROM builds AS b JOIN files AS f ON f.build_id = b.build_id
    WHERE b.status AND b.package = pkg AND b.version = ver;
$fn$;

REVOKE ALL ON FUNCTION get_version_files(TEXT, TEXT) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION get_version_files(TEXT, TEXT) TO {username};

-- get_project_data(pkg) --------------------------------------------------------
-- Everything the project page, the simple index and the project JSON need,
-- as one JSON document:
--
--   {"name": display name, "description": ...,
--    "releases": {version: {
--        "yanked": bool, "released": timestamp with time zone (UTC),
--        "skip": the version's skip reason, else the package's,
--        "files": {filename: {"location", "hash", "size", "abi_builder",
--                             "abi_file", "platform", "requires_python",
--                             "apt_dependencies": [...] or {},
--                             "pip_dependencies": [...] or {}}},
--        "abis": {abi: {"status": skip|success|fail|pending|error,
--                       "build_id": int or null}}}}}
--
-- An empty collection is written as {} (as piwheels does).
--
-- "abis": each (version, active build ABI X) is paired with every build of
-- the version whose builder ABI sorts <= X (string order) and with each of
-- that build's files. A pairing reports on ABI X when its file is ABI-less
-- ('none' or 'abi3'), else on the file's ABI, else the builder's, else X.
-- Its score:
--
--   no build at all .......................................... 1
--   builder = X:  failed 2; succeeded with a file of ABI X 5; with a
--                 'none'/'abi3' file 4; with no file 1; any other file -2
--   builder < X:  succeeded with a file of ABI X 4; with a 'none'/'abi3'
--                 file 3; anything else -1
--
-- Per (version, reported ABI) the best pairing wins (on equal scores, the
-- latest build); a winner with a negative score is left out.
-- apt dependencies leave out the packages preinstalled for the file's ABI.

CREATE FUNCTION get_project_data(pkg TEXT)
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

-- The web writer's buffer ------------------------------------------------------

-- Replaces the saved buffer with the given rows.
CREATE FUNCTION save_rewrites_pending(data rewrites_pending ARRAY)
    RETURNS VOID
    LANGUAGE SQL
    CALLED ON NULL INPUT
    SECURITY DEFINER
    SET search_path = public, pg_temp
AS $fn$
    DELETE FROM rewrites_pending;
    INSERT INTO rewrites_pending (package, added_at, command)
    SELECT r.package, r.added_at, r.command FROM UNNEST(data) AS r;
$fn$;

REVOKE ALL ON FUNCTION save_rewrites_pending(rewrites_pending ARRAY)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION save_rewrites_pending(rewrites_pending ARRAY)
    TO {username};

-- The saved buffer, oldest first. The rows stay in the table (as in
-- piwheels); the next save replaces them.
CREATE FUNCTION load_rewrites_pending()
    RETURNS TABLE(
        package rewrites_pending.package%TYPE,
        added_at rewrites_pending.added_at%TYPE,
        command rewrites_pending.command%TYPE
    )
    LANGUAGE SQL
    CALLED ON NULL INPUT
    SECURITY DEFINER
    SET search_path = public, pg_temp
AS $fn$
    SELECT r.package, r.added_at, r.command
    FROM rewrites_pending AS r
    ORDER BY r.added_at;
$fn$;

REVOKE ALL ON FUNCTION load_rewrites_pending() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION load_rewrites_pending() TO {username};
