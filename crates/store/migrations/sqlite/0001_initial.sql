-- Tessera server state, version 1, SQLite. The PostgreSQL migrations mirror these table for
-- table (identity columns instead of INTEGER PRIMARY KEY). Times are Unix seconds (UTC);
-- facts are JSON text.

CREATE TABLE devices (
    id              INTEGER PRIMARY KEY,
    computer_name   TEXT NOT NULL,
    serial          TEXT,
    ocs_device_id   TEXT UNIQUE,
    manifest        TEXT NOT NULL,
    facts           TEXT NOT NULL DEFAULT '{}',
    created_at      BIGINT NOT NULL,
    last_contact    BIGINT
);
CREATE UNIQUE INDEX devices_serial ON devices (serial);

CREATE TABLE enrollment_tokens (
    id              INTEGER PRIMARY KEY,
    token_hash      TEXT NOT NULL UNIQUE,
    label           TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT,
    uses_left       INTEGER,
    revoked_at      BIGINT
);

CREATE TABLE certificates (
    serial          TEXT PRIMARY KEY,
    device_id       INTEGER REFERENCES devices (id) ON DELETE SET NULL,
    computer_name   TEXT NOT NULL,
    not_before      BIGINT NOT NULL,
    not_after       BIGINT NOT NULL,
    certificate_pem TEXT NOT NULL,
    revoked_at      BIGINT,
    revocation_reason TEXT
);
CREATE INDEX certificates_device ON certificates (device_id);

CREATE TABLE packages (
    id              BIGINT PRIMARY KEY,
    name            TEXT NOT NULL,
    version         TEXT NOT NULL,
    priority        INTEGER NOT NULL CHECK (priority BETWEEN 0 AND 10),
    action          TEXT NOT NULL,
    fragments       INTEGER NOT NULL,
    size            BIGINT NOT NULL,
    created_at      BIGINT NOT NULL
);

CREATE TABLE deployments (
    device_id       INTEGER NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    package_id      BIGINT NOT NULL REFERENCES packages (id) ON DELETE CASCADE,
    state           TEXT NOT NULL CHECK (state IN ('waiting', 'notified', 'success', 'error')),
    code            TEXT,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (device_id, package_id)
);
CREATE INDEX deployments_package_state ON deployments (package_id, state);
CREATE INDEX deployments_state_updated ON deployments (state, updated_at);

CREATE TABLE deployment_history (
    id              INTEGER PRIMARY KEY,
    device_id       INTEGER NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    package_id      BIGINT NOT NULL REFERENCES packages (id) ON DELETE CASCADE,
    state           TEXT NOT NULL,
    code            TEXT,
    at              BIGINT NOT NULL
);
CREATE INDEX deployment_history_device ON deployment_history (device_id, package_id);
