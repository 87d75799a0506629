-- The facade's state store gets a database and a role of its own, apart
-- from the modern API's data, as in production.
CREATE ROLE strangler LOGIN PASSWORD 'strangler';
CREATE DATABASE strangler OWNER strangler;
