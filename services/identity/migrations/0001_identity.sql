CREATE TABLE persons (
    ins                        text PRIMARY KEY,
    first_name                 text NOT NULL,
    last_name                  text NOT NULL,
    birth_date                 date NOT NULL,
    email                      text,
    phone                      text,
    legal_representative_email text,
    registered_at              timestamptz NOT NULL
);

CREATE TABLE spaces (
    ins          text PRIMARY KEY REFERENCES persons (ins),
    status       text NOT NULL CHECK (status IN ('announced', 'objected', 'open', 'closed')),
    announced_at timestamptz NOT NULL,
    opened_at    timestamptz,
    objected_at  timestamptz,
    closed_at    timestamptz
);

CREATE TABLE professionals (
    rpps            text PRIMARY KEY,
    first_name      text NOT NULL,
    last_name       text NOT NULL,
    profession      text NOT NULL,
    specialty       text,
    card_public_key text NOT NULL,
    registered_at   timestamptz NOT NULL
);

-- Card sign-in: a one-use random challenge the card signs.
CREATE TABLE challenges (
    challenge  text PRIMARY KEY,
    kind       text NOT NULL,
    subject    text NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);

-- Holder sign-in: one-time codes, stored hashed, few attempts.
CREATE TABLE holder_codes (
    ins        text NOT NULL REFERENCES persons (ins),
    code_hash  text NOT NULL,
    expires_at timestamptz NOT NULL,
    attempts   integer NOT NULL DEFAULT 0,
    used_at    timestamptz,
    PRIMARY KEY (ins, code_hash)
);
