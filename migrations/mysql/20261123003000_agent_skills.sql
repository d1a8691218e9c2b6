-- An agent's skills: a JSON object skill name → proficiency 1–5 (docs/routing.md, "Skills").
-- NULL reads as no skills.
ALTER TABLE users ADD COLUMN skills TEXT NULL;
