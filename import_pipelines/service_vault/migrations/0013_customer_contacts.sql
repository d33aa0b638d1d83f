-- Contacts imported from files, sheets and pushes (the contacts template): the address, the
-- second number, the company and the other columns a contacts export carries. Phones are kept as
-- the source wrote them, with their normalised form (digits with the country calling code) beside
-- them, which duplicate detection and people searching by number use. Columns of the export that
-- no field fits are kept in custom_fields, by their header.
ALTER TABLE customer_users
    ADD COLUMN IF NOT EXISTS phone_normalized  varchar(32),
    ADD COLUMN IF NOT EXISTS mobile            varchar(64),
    ADD COLUMN IF NOT EXISTS mobile_normalized varchar(32),
    ADD COLUMN IF NOT EXISTS company           varchar(255),
    ADD COLUMN IF NOT EXISTS address_line1     varchar(255),
    ADD COLUMN IF NOT EXISTS address_line2     varchar(255),
    ADD COLUMN IF NOT EXISTS city              varchar(255),
    ADD COLUMN IF NOT EXISTS state             varchar(255),
    ADD COLUMN IF NOT EXISTS zip_code          varchar(32),
    ADD COLUMN IF NOT EXISTS country           varchar(255),
    ADD COLUMN IF NOT EXISTS website           text,
    ADD COLUMN IF NOT EXISTS notes             text,
    ADD COLUMN IF NOT EXISTS tags              text[],
    ADD COLUMN IF NOT EXISTS custom_fields     jsonb;
CREATE INDEX IF NOT EXISTS customer_users_phone_normalized ON customer_users (phone_normalized);
