-- Whether a text value reads as a type, for servers before PostgreSQL 16 (which have
-- pg_input_is_valid): the map step checks every staged text value bound for a typed column
-- set-based, so a column of the wrong type is one error per row naming the field, found before
-- the merge instead of by splitting batches one refused row at a time.
CREATE OR REPLACE FUNCTION import_control.castable(value text, type_name text) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
    EXECUTE 'SELECT $1::' || type_name::regtype::text USING value;
    RETURN true;
EXCEPTION WHEN data_exception THEN
    RETURN false;
END $$;
