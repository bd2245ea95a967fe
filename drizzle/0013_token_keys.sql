CREATE TABLE `token_keys` (
	`kid` text PRIMARY KEY NOT NULL,
	`public_jwk` text NOT NULL,
	`created_at` integer NOT NULL,
	`retired_at` integer,
	`verify_until` integer,
	CONSTRAINT "token_keys_retired_pair" CHECK((retired_at IS NULL) = (verify_until IS NULL)),
	CONSTRAINT "token_keys_grace" CHECK(verify_until IS NULL OR verify_until >= retired_at)
);
