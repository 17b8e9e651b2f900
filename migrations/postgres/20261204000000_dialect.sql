-- The metadata dialect of a repository: 'tuf' (the TUF specification's, what
-- tagtrust's client, python-tuf and tough read) or 'notary' (Notary v1's,
-- what the notary CLI and Docker Content Trust read). Set by its first
-- publish, from the uploaded root's `_type`, and fixed until the repository
-- is deleted; NULL for a repository never published. Every repository
-- published before dialects existed is a TUF one.
ALTER TABLE repositories ADD COLUMN dialect TEXT;
UPDATE repositories SET dialect = 'tuf'
WHERE EXISTS (SELECT 1 FROM metadata m WHERE m.gun = repositories.gun);
