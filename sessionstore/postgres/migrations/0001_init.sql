-- The first schema of the PostgreSQL engine. Keys are compared byte by
-- byte (COLLATE "C", bytea) like Badger's, so paging and scan order are
-- the same on both engines.

CREATE TABLE kratos_identities (
	id      text COLLATE "C" PRIMARY KEY,
	-- version counts stored writes (optimistic concurrency); data's own
	-- "version" field follows it.
	version bigint NOT NULL DEFAULT 0,
	state   text NOT NULL DEFAULT '',
	-- json, not jsonb: traits and metadata are returned byte for byte.
	data    json NOT NULL
);

-- One row per unique identifier (credential identifiers and addresses,
-- sessionstore.IdentityIndexes). The key is the SHA-256 of the
-- identifier so that identifiers of any length and any bytes fit.
CREATE TABLE kratos_identifiers (
	type        text COLLATE "C" NOT NULL,
	hash        bytea NOT NULL,
	identifier  bytea NOT NULL,
	identity_id text COLLATE "C" NOT NULL REFERENCES kratos_identities (id) ON DELETE CASCADE,
	PRIMARY KEY (type, hash)
);
CREATE INDEX kratos_identifiers_identity ON kratos_identifiers (identity_id);

CREATE TABLE kratos_sessions (
	id          text COLLATE "C" PRIMARY KEY,
	token_hash  bytea NOT NULL UNIQUE,
	logout_hash bytea UNIQUE,
	-- No foreign key: a session may name an identity that is gone (the
	-- readers refuse it), as in the Badger engine.
	identity_id text COLLATE "C" NOT NULL,
	-- When the row stops being served and may be swept: ExpiresAt plus
	-- sessionstore.SessionGrace; NULL: never.
	purge_at    timestamptz,
	data        json NOT NULL
);
CREATE INDEX kratos_sessions_identity ON kratos_sessions (identity_id);
CREATE INDEX kratos_sessions_purge ON kratos_sessions (purge_at) WHERE purge_at IS NOT NULL;

CREATE TABLE kratos_records (
	ns         text COLLATE "C" NOT NULL,
	key        bytea NOT NULL,
	value      bytea NOT NULL,
	expires_at timestamptz,
	PRIMARY KEY (ns, key)
);
CREATE INDEX kratos_records_expiry ON kratos_records (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE kratos_secrets (
	name       text COLLATE "C" PRIMARY KEY,
	value      bytea NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now()
);
