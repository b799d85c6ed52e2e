-- Spend budgets (shared/budgets.py): an amount in USD and a calendar period, for a user and
-- for a gateway API key; both columns are set, or neither.
ALTER TABLE users
    ADD COLUMN budget_usd    numeric(18, 8) CHECK (budget_usd > 0),
    ADD COLUMN budget_period text CHECK (budget_period IN ('day', 'week', 'month', 'none')),
    ADD CONSTRAINT users_budget_whole CHECK ((budget_usd IS NULL) = (budget_period IS NULL));

ALTER TABLE api_keys
    ADD COLUMN budget_usd    numeric(18, 8) CHECK (budget_usd > 0),
    ADD COLUMN budget_period text CHECK (budget_period IN ('day', 'week', 'month', 'none')),
    ADD CONSTRAINT api_keys_budget_whole CHECK ((budget_usd IS NULL) = (budget_period IS NULL));
