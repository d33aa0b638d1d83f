"""Two help-desk schemas written independently of the FreeScout demo, for judging join suggestions.

- **osTicket 1.17** (``setup/inc/streams/core/install-mysql.sql``), typed as PostgreSQL: an
  ``ost_`` prefix on every table, singular table names, primary keys named ``staff_id`` or
  ``topic_id`` on some tables and ``id`` on others, abbreviations (``dept_id``, ``org_id``),
  ``0`` instead of NULL for "none", polymorphic ``object_id`` + ``object_type``, no foreign keys.
- **Chatwoot** (``db/schema.rb``, Rails): plural tables, ``*_id`` columns, a few declared foreign
  keys (``add_foreign_key``) and many undeclared, polymorphic ``sender_type`` / ``sender_id``,
  ``taggable_type`` / ``taggable_id``, and references by role (``assignee_id``, ``inviter_id``).

A subset of each schema's tables (the ones around tickets / conversations) with its real columns,
filled with generated rows whose ids overlap across tables as real ids do (every table counts
from 1). ``TRUTH`` lists each reference as the application's code uses it; a column missing from
``TRUTH`` references nothing (or a table left out of the subset), so any suggestion for it is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass

from import_pipelines.db import connection


@dataclass(frozen=True)
class EvaluationSchema:
    """DDL, data and the true references (``"table.column" -> "table.column"``)."""

    name: str
    ddl: str
    data: str
    truth: dict[str, str]
    declared: frozenset[str] = frozenset()

    def create(self, url: str) -> None:
        """Create the tables, fill them, and analyse them (as a live database would be)."""
        with connection(url, autocommit=True) as conn:
            conn.execute("SELECT setseed(0.42)")
            conn.execute(self.ddl)
            conn.execute(self.data)
            conn.execute("ANALYZE")


OSTICKET = EvaluationSchema(
    name="osticket",
    ddl="""
CREATE TABLE ost_department (
  id serial PRIMARY KEY, pid integer, tpl_id integer NOT NULL DEFAULT 0, sla_id integer NOT NULL DEFAULT 0,
  schedule_id integer NOT NULL DEFAULT 0, email_id integer NOT NULL DEFAULT 0,
  autoresp_email_id integer NOT NULL DEFAULT 0, manager_id integer NOT NULL DEFAULT 0,
  flags integer NOT NULL DEFAULT 0, name varchar(128) NOT NULL DEFAULT '', signature text NOT NULL,
  ispublic smallint NOT NULL DEFAULT 1, group_membership smallint NOT NULL DEFAULT 0,
  ticket_auto_response smallint NOT NULL DEFAULT 1, message_auto_response smallint NOT NULL DEFAULT 0,
  path varchar(128) NOT NULL DEFAULT '/', updated timestamp NOT NULL, created timestamp NOT NULL,
  UNIQUE (name, pid));
CREATE TABLE ost_role (
  id serial PRIMARY KEY, flags integer NOT NULL DEFAULT 1, name varchar(64) UNIQUE, permissions text, notes text,
  created timestamp NOT NULL, updated timestamp NOT NULL);
CREATE TABLE ost_staff (
  staff_id serial PRIMARY KEY, dept_id integer NOT NULL DEFAULT 0, role_id integer NOT NULL DEFAULT 0,
  username varchar(32) NOT NULL DEFAULT '' UNIQUE, firstname varchar(32), lastname varchar(32), passwd varchar(128),
  backend varchar(32), email varchar(255), phone varchar(24) NOT NULL DEFAULT '', phone_ext varchar(6),
  mobile varchar(24) NOT NULL DEFAULT '', signature text NOT NULL, lang varchar(16), timezone varchar(64),
  locale varchar(16), notes text, isactive smallint NOT NULL DEFAULT 1, isadmin smallint NOT NULL DEFAULT 0,
  isvisible smallint NOT NULL DEFAULT 1, onvacation smallint NOT NULL DEFAULT 0,
  assigned_only smallint NOT NULL DEFAULT 0, show_assigned_tickets smallint NOT NULL DEFAULT 0,
  change_passwd smallint NOT NULL DEFAULT 0, max_page_size integer NOT NULL DEFAULT 0,
  auto_refresh_rate integer NOT NULL DEFAULT 0, default_signature_type varchar(4) NOT NULL DEFAULT 'none',
  default_paper_size varchar(8) NOT NULL DEFAULT 'Letter', extra text, permissions text, created timestamp NOT NULL,
  lastlogin timestamp, passwdreset timestamp, updated timestamp NOT NULL);
CREATE TABLE ost_staff_dept_access (
  staff_id integer NOT NULL DEFAULT 0, dept_id integer NOT NULL DEFAULT 0, role_id integer NOT NULL DEFAULT 0,
  flags integer NOT NULL DEFAULT 1, PRIMARY KEY (staff_id, dept_id));
CREATE TABLE ost_team (
  team_id serial PRIMARY KEY, lead_id integer NOT NULL DEFAULT 0, flags integer NOT NULL DEFAULT 1,
  name varchar(125) NOT NULL DEFAULT '' UNIQUE, notes text, created timestamp NOT NULL, updated timestamp NOT NULL);
CREATE TABLE ost_team_member (
  team_id integer NOT NULL DEFAULT 0, staff_id integer NOT NULL, flags integer NOT NULL DEFAULT 0,
  PRIMARY KEY (team_id, staff_id));
CREATE TABLE ost_schedule (
  id serial PRIMARY KEY, flags integer NOT NULL DEFAULT 0, name varchar(255) NOT NULL, timezone varchar(64),
  description varchar(255) NOT NULL, created timestamp NOT NULL, updated timestamp NOT NULL);
CREATE TABLE ost_sla (
  id serial PRIMARY KEY, schedule_id integer NOT NULL DEFAULT 0, flags integer NOT NULL DEFAULT 3,
  grace_period integer NOT NULL DEFAULT 0, name varchar(64) NOT NULL DEFAULT '' UNIQUE, notes text,
  created timestamp NOT NULL, updated timestamp NOT NULL);
CREATE TABLE ost_email (
  email_id serial PRIMARY KEY, noautoresp smallint NOT NULL DEFAULT 0, priority_id integer NOT NULL DEFAULT 2,
  dept_id integer NOT NULL DEFAULT 0, topic_id integer NOT NULL DEFAULT 0, email varchar(255) NOT NULL DEFAULT '' UNIQUE,
  name varchar(255) NOT NULL DEFAULT '', notes text, created timestamp NOT NULL, updated timestamp NOT NULL);
CREATE TABLE ost_help_topic (
  topic_id serial PRIMARY KEY, topic_pid integer NOT NULL DEFAULT 0, ispublic smallint NOT NULL DEFAULT 1,
  noautoresp smallint NOT NULL DEFAULT 0, flags integer DEFAULT 0, status_id integer NOT NULL DEFAULT 0,
  priority_id integer NOT NULL DEFAULT 0, dept_id integer NOT NULL DEFAULT 0, staff_id integer NOT NULL DEFAULT 0,
  team_id integer NOT NULL DEFAULT 0, sla_id integer NOT NULL DEFAULT 0, page_id integer NOT NULL DEFAULT 0,
  sequence_id integer NOT NULL DEFAULT 0, sort integer NOT NULL DEFAULT 0, topic varchar(128) NOT NULL DEFAULT '',
  number_format varchar(32), notes text, created timestamp NOT NULL, updated timestamp NOT NULL,
  UNIQUE (topic, topic_pid));
CREATE TABLE ost_ticket_status (
  id serial PRIMARY KEY, name varchar(60) NOT NULL DEFAULT '' UNIQUE, state varchar(16), mode integer NOT NULL DEFAULT 0,
  flags integer NOT NULL DEFAULT 0, sort integer NOT NULL DEFAULT 0, properties text NOT NULL,
  created timestamp NOT NULL, updated timestamp NOT NULL);
CREATE TABLE ost_ticket_priority (
  priority_id serial PRIMARY KEY, priority varchar(60) NOT NULL DEFAULT '' UNIQUE,
  priority_desc varchar(30) NOT NULL DEFAULT '', priority_color varchar(7) NOT NULL DEFAULT '',
  priority_urgency smallint NOT NULL DEFAULT 0, ispublic smallint NOT NULL DEFAULT 1);
CREATE TABLE ost_organization (
  id serial PRIMARY KEY, name varchar(128) NOT NULL DEFAULT '', manager varchar(16) NOT NULL DEFAULT '',
  status integer NOT NULL DEFAULT 0, domain varchar(256) NOT NULL DEFAULT '', extra text, created timestamp,
  updated timestamp);
CREATE TABLE ost_user (
  id serial PRIMARY KEY, org_id integer NOT NULL, default_email_id integer NOT NULL, status integer NOT NULL DEFAULT 0,
  name varchar(128) NOT NULL, created timestamp NOT NULL, updated timestamp NOT NULL);
CREATE TABLE ost_user_email (
  id serial PRIMARY KEY, user_id integer NOT NULL, flags integer NOT NULL DEFAULT 0, address varchar(255) NOT NULL UNIQUE);
CREATE TABLE ost_user_account (
  id serial PRIMARY KEY, user_id integer NOT NULL, status integer NOT NULL DEFAULT 0, timezone varchar(64),
  lang varchar(16), username varchar(64) UNIQUE, passwd varchar(128), backend varchar(32), extra text,
  registered timestamp);
CREATE TABLE ost_lock (
  lock_id serial PRIMARY KEY, staff_id integer NOT NULL DEFAULT 0, expire timestamp, code varchar(20),
  created timestamp NOT NULL);
CREATE TABLE ost_ticket (
  ticket_id serial PRIMARY KEY, ticket_pid integer, number varchar(20), user_id integer NOT NULL DEFAULT 0,
  user_email_id integer NOT NULL DEFAULT 0, status_id integer NOT NULL DEFAULT 0, dept_id integer NOT NULL DEFAULT 0,
  sla_id integer NOT NULL DEFAULT 0, topic_id integer NOT NULL DEFAULT 0, staff_id integer NOT NULL DEFAULT 0,
  team_id integer NOT NULL DEFAULT 0, email_id integer NOT NULL DEFAULT 0, lock_id integer NOT NULL DEFAULT 0,
  flags integer NOT NULL DEFAULT 0, sort integer NOT NULL DEFAULT 0, ip_address varchar(64) NOT NULL DEFAULT '',
  source varchar(32) NOT NULL DEFAULT 'Other', source_extra varchar(40), isoverdue smallint NOT NULL DEFAULT 0,
  isanswered smallint NOT NULL DEFAULT 0, duedate timestamp, est_duedate timestamp, reopened timestamp,
  closed timestamp, lastupdate timestamp, created timestamp NOT NULL, updated timestamp NOT NULL);
CREATE TABLE ost_ticket__cdata (ticket_id integer PRIMARY KEY, subject text, priority text);
CREATE TABLE ost_thread (
  id serial PRIMARY KEY, object_id integer NOT NULL, object_type char(1) NOT NULL, extra text,
  lastresponse timestamp, lastmessage timestamp, created timestamp NOT NULL);
CREATE TABLE ost_thread_entry (
  id serial PRIMARY KEY, pid integer NOT NULL DEFAULT 0, thread_id integer NOT NULL DEFAULT 0,
  staff_id integer NOT NULL DEFAULT 0, user_id integer NOT NULL DEFAULT 0, type char(1) NOT NULL DEFAULT '',
  flags integer NOT NULL DEFAULT 0, poster varchar(128) NOT NULL DEFAULT '', editor integer, editor_type char(1),
  source varchar(32) NOT NULL DEFAULT '', title varchar(255), body text NOT NULL, format varchar(16) NOT NULL DEFAULT 'html',
  ip_address varchar(64) NOT NULL DEFAULT '', extra text, recipients text, created timestamp NOT NULL,
  updated timestamp NOT NULL);
CREATE TABLE ost_event (id serial PRIMARY KEY, name varchar(60) NOT NULL UNIQUE, description varchar(60));
CREATE TABLE ost_thread_event (
  id serial PRIMARY KEY, thread_id integer NOT NULL DEFAULT 0, thread_type char(1) NOT NULL DEFAULT '',
  event_id integer, staff_id integer NOT NULL, team_id integer NOT NULL, dept_id integer NOT NULL,
  topic_id integer NOT NULL, data varchar(1024), username varchar(128) NOT NULL DEFAULT 'SYSTEM', uid integer,
  uid_type char(1) NOT NULL DEFAULT 'S', annulled smallint NOT NULL DEFAULT 0, "timestamp" timestamp NOT NULL);
CREATE TABLE ost_file (
  id serial PRIMARY KEY, ft char(1) NOT NULL DEFAULT 'T', bk char(1) NOT NULL DEFAULT 'D',
  type varchar(255) NOT NULL DEFAULT '', size bigint NOT NULL DEFAULT 0, key varchar(86) NOT NULL,
  signature varchar(86) NOT NULL, name varchar(255) NOT NULL DEFAULT '', attrs varchar(255), created timestamp NOT NULL);
CREATE TABLE ost_attachment (
  id serial PRIMARY KEY, object_id integer NOT NULL, type char(1) NOT NULL, file_id integer NOT NULL,
  name varchar(255), inline smallint NOT NULL DEFAULT 0, lang varchar(16));
""",
    # zero means "none" where osTicket's code writes 0 (unassigned, no team, no SLA, no lock, ...)
    data="""
CREATE FUNCTION pick(n integer) RETURNS integer LANGUAGE sql AS 'SELECT 1 + floor(random() * n)::integer';
CREATE FUNCTION pick_or_zero(n integer, zero float) RETURNS integer LANGUAGE sql
  AS 'SELECT CASE WHEN random() < zero THEN 0 ELSE 1 + floor(random() * n)::integer END';
INSERT INTO ost_schedule (name, timezone, description, created, updated)
  SELECT 'Schedule ' || g, 'UTC', 'Business hours', now(), now() FROM generate_series(1, 2) g;
INSERT INTO ost_sla (schedule_id, grace_period, name, created, updated)
  SELECT pick_or_zero(2, 0.3), 18 * g, 'SLA ' || g, now(), now() FROM generate_series(1, 3) g;
INSERT INTO ost_role (name, permissions, created, updated)
  SELECT 'Role ' || g, '{}', now(), now() FROM generate_series(1, 4) g;
INSERT INTO ost_department (pid, tpl_id, sla_id, schedule_id, email_id, autoresp_email_id, manager_id, name,
                            signature, updated, created)
  SELECT CASE WHEN g > 3 THEN pick(3) END, 1, pick_or_zero(3, 0.3), pick_or_zero(2, 0.5), pick(4), pick_or_zero(4, 0.5),
         pick_or_zero(25, 0.5), 'Department ' || g, '', now(), now() FROM generate_series(1, 6) g;
INSERT INTO ost_staff (dept_id, role_id, username, firstname, lastname, passwd, email, signature, created, updated)
  SELECT pick(6), pick(4), 'agent' || g, 'Agent', 'Number ' || g, '$2a$08$' || md5(g::text), 'agent' || g || '@example.com',
         '', now(), now() FROM generate_series(1, 25) g;
INSERT INTO ost_staff_dept_access (staff_id, dept_id, role_id)
  SELECT DISTINCT ON (s, d) s, d, pick(4) FROM (SELECT pick(25) AS s, pick(6) AS d FROM generate_series(1, 40)) x;
INSERT INTO ost_team (lead_id, name, created, updated)
  SELECT pick_or_zero(25, 0.25), 'Team ' || g, now(), now() FROM generate_series(1, 4) g;
INSERT INTO ost_team_member (team_id, staff_id)
  SELECT DISTINCT ON (t, s) t, s FROM (SELECT pick(4) AS t, pick(25) AS s FROM generate_series(1, 12)) x;
INSERT INTO ost_ticket_status (name, state, properties, created, updated)
  SELECT n, s, '{}', now(), now() FROM (VALUES ('Open', 'open'), ('Resolved', 'closed'), ('Closed', 'closed'),
  ('Archived', 'archived'), ('Deleted', 'deleted')) v(n, s);
INSERT INTO ost_ticket_priority (priority, priority_desc, priority_color, priority_urgency)
  VALUES ('low', 'Low', '#DDFFDD', 4), ('normal', 'Normal', '#FFFFF0', 3), ('high', 'High', '#FEE7E7', 2),
         ('emergency', 'Emergency', '#FEE7E7', 1);
INSERT INTO ost_email (priority_id, dept_id, topic_id, email, name, created, updated)
  SELECT pick(4), pick(6), pick_or_zero(12, 0.5), 'support' || g || '@helpdesk.example', 'Support ' || g, now(), now()
  FROM generate_series(1, 4) g;
INSERT INTO ost_help_topic (topic_pid, status_id, priority_id, dept_id, staff_id, team_id, sla_id, topic, created,
                            updated)
  SELECT CASE WHEN g > 6 THEN pick(6) ELSE 0 END, pick_or_zero(5, 0.6), pick_or_zero(4, 0.3), pick_or_zero(6, 0.2),
         pick_or_zero(25, 0.7), pick_or_zero(4, 0.7), pick_or_zero(3, 0.5), 'Topic ' || g, now(), now()
  FROM generate_series(1, 12) g;
INSERT INTO ost_organization (name, domain, created, updated)
  SELECT 'Organization ' || g, 'org' || g || '.example', now(), now() FROM generate_series(1, 50) g;
INSERT INTO ost_user (org_id, default_email_id, name, created, updated)
  SELECT pick_or_zero(50, 0.8), g, 'User ' || g, now(), now() FROM generate_series(1, 3000) g;
INSERT INTO ost_user_email (user_id, address) SELECT g, 'user' || g || '@mail.example' FROM generate_series(1, 3000) g;
INSERT INTO ost_user_email (user_id, address)
  SELECT pick(3000), 'alias' || g || '@mail.example' FROM generate_series(1, 600) g;
INSERT INTO ost_user_account (user_id, username, passwd, registered)
  SELECT g * 3, 'user' || g, '$2a$08$' || md5(g::text), now() FROM generate_series(1, 800) g;
INSERT INTO ost_lock (staff_id, expire, code, created)
  SELECT pick(25), now(), left(md5(g::text), 20), now() FROM generate_series(1, 30) g;
INSERT INTO ost_ticket (ticket_pid, number, user_id, user_email_id, status_id, dept_id, sla_id, topic_id, staff_id,
                        team_id, email_id, lock_id, ip_address, source, created, updated)
  SELECT CASE WHEN random() < 0.02 AND g > 10 THEN g - 1 - floor(random() * 9)::integer END, (100000 + g)::text,
         u, u, pick(5), pick(6), pick_or_zero(3, 0.5), pick_or_zero(12, 0.1), pick_or_zero(25, 0.3),
         pick_or_zero(4, 0.8), pick_or_zero(4, 0.4), CASE WHEN random() < 0.005 THEN pick(30) ELSE 0 END,
         '10.0.' || (g % 250) || '.' || (g % 199), (ARRAY['Web', 'Email', 'Phone', 'API'])[pick(4)], now(), now()
  FROM (SELECT g, pick(3000) AS u FROM generate_series(1, 6000) g) t;
INSERT INTO ost_ticket__cdata (ticket_id, subject, priority) SELECT ticket_id, 'Subject of ' || number, pick(4)::text
  FROM ost_ticket;
-- one thread per ticket ('T') and one per task ('A'; tasks are not in this subset)
INSERT INTO ost_thread (object_id, object_type, created) SELECT ticket_id, 'T', now() FROM ost_ticket;
INSERT INTO ost_thread (object_id, object_type, created) SELECT g, 'A', now() FROM generate_series(1, 300) g;
INSERT INTO ost_thread_entry (pid, thread_id, staff_id, user_id, type, poster, body, created, updated)
  SELECT 0, t, CASE WHEN staff THEN pick(25) ELSE 0 END, CASE WHEN staff THEN 0 ELSE pick(3000) END,
         CASE WHEN staff THEN 'R' ELSE 'M' END, 'Poster', 'Message body ' || g, now(), now()
  FROM (SELECT g, pick(6300) AS t, random() < 0.4 AS staff FROM generate_series(1, 24000) g) e;
UPDATE ost_thread_entry SET pid = id - 1 WHERE id % 25 = 0;
INSERT INTO ost_event (name, description)
  SELECT n, n FROM unnest(ARRAY['created', 'closed', 'reopened', 'assigned', 'released', 'transferred', 'referred',
                                'overdue', 'edited', 'viewed', 'error', 'collab']) n;
INSERT INTO ost_thread_event (thread_id, thread_type, event_id, staff_id, team_id, dept_id, topic_id, uid, uid_type,
                              "timestamp")
  SELECT pick(6300), 'T', pick(12), pick_or_zero(25, 0.3), pick_or_zero(4, 0.85), pick(6), pick_or_zero(12, 0.3),
         pick(3000), 'U', now() FROM generate_series(1, 15000) g;
INSERT INTO ost_file (type, size, key, signature, name, created)
  SELECT 'image/png', 1000 + g, md5(g::text), md5((g * 7)::text), 'file' || g || '.png', now()
  FROM generate_series(1, 2000) g;
INSERT INTO ost_attachment (object_id, type, file_id, name)
  SELECT pick(24000), 'H', pick(2000), 'file.png' FROM generate_series(1, 2500) g;
DROP FUNCTION pick_or_zero(integer, float);
DROP FUNCTION pick(integer);
""",
    truth={
        "ost_department.pid": "ost_department.id", "ost_department.sla_id": "ost_sla.id",
        "ost_department.schedule_id": "ost_schedule.id", "ost_department.email_id": "ost_email.email_id",
        "ost_department.autoresp_email_id": "ost_email.email_id", "ost_department.manager_id": "ost_staff.staff_id",
        "ost_staff.dept_id": "ost_department.id", "ost_staff.role_id": "ost_role.id",
        "ost_staff_dept_access.staff_id": "ost_staff.staff_id", "ost_staff_dept_access.dept_id": "ost_department.id",
        "ost_staff_dept_access.role_id": "ost_role.id", "ost_team.lead_id": "ost_staff.staff_id",
        "ost_team_member.team_id": "ost_team.team_id", "ost_team_member.staff_id": "ost_staff.staff_id",
        "ost_sla.schedule_id": "ost_schedule.id", "ost_email.priority_id": "ost_ticket_priority.priority_id",
        "ost_email.dept_id": "ost_department.id", "ost_email.topic_id": "ost_help_topic.topic_id",
        "ost_help_topic.topic_pid": "ost_help_topic.topic_id", "ost_help_topic.status_id": "ost_ticket_status.id",
        "ost_help_topic.priority_id": "ost_ticket_priority.priority_id", "ost_help_topic.dept_id": "ost_department.id",
        "ost_help_topic.staff_id": "ost_staff.staff_id", "ost_help_topic.team_id": "ost_team.team_id",
        "ost_help_topic.sla_id": "ost_sla.id", "ost_user.org_id": "ost_organization.id",
        "ost_user.default_email_id": "ost_user_email.id", "ost_user_email.user_id": "ost_user.id",
        "ost_user_account.user_id": "ost_user.id", "ost_lock.staff_id": "ost_staff.staff_id",
        "ost_ticket.ticket_pid": "ost_ticket.ticket_id", "ost_ticket.user_id": "ost_user.id",
        "ost_ticket.user_email_id": "ost_user_email.id", "ost_ticket.status_id": "ost_ticket_status.id",
        "ost_ticket.dept_id": "ost_department.id", "ost_ticket.sla_id": "ost_sla.id",
        "ost_ticket.topic_id": "ost_help_topic.topic_id", "ost_ticket.staff_id": "ost_staff.staff_id",
        "ost_ticket.team_id": "ost_team.team_id", "ost_ticket.email_id": "ost_email.email_id",
        "ost_ticket.lock_id": "ost_lock.lock_id", "ost_ticket__cdata.ticket_id": "ost_ticket.ticket_id",
        "ost_thread_entry.pid": "ost_thread_entry.id", "ost_thread_entry.thread_id": "ost_thread.id",
        "ost_thread_entry.staff_id": "ost_staff.staff_id", "ost_thread_entry.user_id": "ost_user.id",
        "ost_thread_event.thread_id": "ost_thread.id", "ost_thread_event.event_id": "ost_event.id",
        "ost_thread_event.staff_id": "ost_staff.staff_id", "ost_thread_event.team_id": "ost_team.team_id",
        "ost_thread_event.dept_id": "ost_department.id", "ost_thread_event.topic_id": "ost_help_topic.topic_id",
        "ost_attachment.file_id": "ost_file.id",
    },
)


CHATWOOT = EvaluationSchema(
    name="chatwoot",
    ddl="""
CREATE TABLE accounts (
  id bigserial PRIMARY KEY, name varchar NOT NULL, created_at timestamp NOT NULL, updated_at timestamp NOT NULL,
  locale integer DEFAULT 0, domain varchar(100), support_email varchar(100), feature_flags bigint NOT NULL DEFAULT 0,
  auto_resolve_duration integer, limits jsonb DEFAULT '{}', custom_attributes jsonb DEFAULT '{}', status integer DEFAULT 0);
CREATE TABLE users (
  id serial PRIMARY KEY, provider varchar NOT NULL DEFAULT 'email', uid varchar NOT NULL DEFAULT '',
  encrypted_password varchar NOT NULL DEFAULT '', reset_password_token varchar, reset_password_sent_at timestamp,
  remember_created_at timestamp, sign_in_count integer NOT NULL DEFAULT 0, current_sign_in_at timestamp,
  last_sign_in_at timestamp, current_sign_in_ip varchar, last_sign_in_ip varchar, confirmation_token varchar,
  confirmed_at timestamp, confirmation_sent_at timestamp, unconfirmed_email varchar, name varchar NOT NULL,
  display_name varchar, email varchar, tokens json, created_at timestamp NOT NULL, updated_at timestamp NOT NULL,
  pubsub_token varchar UNIQUE, availability integer DEFAULT 0, ui_settings jsonb DEFAULT '{}',
  custom_attributes jsonb DEFAULT '{}', type varchar, message_signature text);
CREATE TABLE account_users (
  id bigserial PRIMARY KEY, account_id bigint, user_id bigint, role integer DEFAULT 0, inviter_id bigint,
  created_at timestamp NOT NULL, updated_at timestamp NOT NULL, active_at timestamp, availability integer NOT NULL DEFAULT 0,
  auto_offline boolean NOT NULL DEFAULT true, UNIQUE (account_id, user_id));
CREATE TABLE channel_web_widgets (
  id serial PRIMARY KEY, website_url varchar, account_id integer, created_at timestamp NOT NULL,
  updated_at timestamp NOT NULL, website_token varchar UNIQUE, widget_color varchar DEFAULT '#1f93ff', welcome_title varchar,
  welcome_tagline varchar, feature_flags integer NOT NULL DEFAULT 7, reply_time integer DEFAULT 0, hmac_token varchar,
  pre_chat_form_enabled boolean DEFAULT false, pre_chat_form_options jsonb DEFAULT '{}',
  hmac_mandatory boolean DEFAULT false, continuity_via_email boolean NOT NULL DEFAULT true);
CREATE TABLE channel_email (
  id bigserial PRIMARY KEY, account_id integer NOT NULL, email varchar NOT NULL UNIQUE, forward_to_email varchar NOT NULL,
  created_at timestamp NOT NULL, updated_at timestamp NOT NULL, imap_enabled boolean DEFAULT false,
  imap_address varchar DEFAULT '', imap_port integer DEFAULT 0, imap_login varchar DEFAULT '',
  imap_password varchar DEFAULT '', imap_enable_ssl boolean DEFAULT true, smtp_enabled boolean DEFAULT false,
  smtp_address varchar DEFAULT '', smtp_port integer DEFAULT 0, smtp_login varchar DEFAULT '',
  smtp_password varchar DEFAULT '', smtp_domain varchar DEFAULT '', provider varchar, provider_config jsonb DEFAULT '{}');
CREATE TABLE inboxes (
  id serial PRIMARY KEY, channel_id integer NOT NULL, account_id integer NOT NULL, name varchar NOT NULL,
  created_at timestamp NOT NULL, updated_at timestamp NOT NULL, channel_type varchar,
  enable_auto_assignment boolean DEFAULT true, greeting_enabled boolean DEFAULT false, greeting_message varchar,
  email_address varchar, working_hours_enabled boolean DEFAULT false, out_of_office_message varchar,
  timezone varchar DEFAULT 'UTC', enable_email_collect boolean DEFAULT true, csat_survey_enabled boolean DEFAULT false,
  allow_messages_after_resolved boolean DEFAULT true, auto_assignment_config jsonb DEFAULT '{}',
  lock_to_single_conversation boolean NOT NULL DEFAULT false, portal_id bigint, sender_name_type integer NOT NULL DEFAULT 0,
  business_name varchar);
CREATE TABLE contacts (
  id serial PRIMARY KEY, name varchar DEFAULT '', email varchar, phone_number varchar, account_id integer NOT NULL,
  created_at timestamp NOT NULL, updated_at timestamp NOT NULL, additional_attributes jsonb DEFAULT '{}',
  identifier varchar, custom_attributes jsonb DEFAULT '{}', last_activity_at timestamp, contact_type integer DEFAULT 0,
  middle_name varchar DEFAULT '', last_name varchar DEFAULT '', location varchar DEFAULT '',
  country_code varchar DEFAULT '', blocked boolean NOT NULL DEFAULT false, UNIQUE (email, account_id));
CREATE TABLE contact_inboxes (
  id bigserial PRIMARY KEY, contact_id bigint REFERENCES contacts ON DELETE CASCADE,
  inbox_id bigint REFERENCES inboxes ON DELETE CASCADE, source_id varchar NOT NULL, created_at timestamp NOT NULL,
  updated_at timestamp NOT NULL, hmac_verified boolean DEFAULT false, pubsub_token varchar UNIQUE,
  UNIQUE (inbox_id, source_id));
CREATE TABLE campaigns (
  id bigserial PRIMARY KEY, display_id integer NOT NULL, title varchar NOT NULL, description text, message text NOT NULL,
  sender_id integer, enabled boolean DEFAULT true, account_id bigint NOT NULL REFERENCES accounts ON DELETE CASCADE,
  inbox_id bigint NOT NULL REFERENCES inboxes ON DELETE CASCADE, trigger_rules jsonb DEFAULT '{}',
  created_at timestamp NOT NULL, updated_at timestamp NOT NULL, campaign_type integer NOT NULL DEFAULT 0,
  campaign_status integer NOT NULL DEFAULT 0, audience jsonb DEFAULT '[]', scheduled_at timestamp,
  trigger_only_during_business_hours boolean DEFAULT false);
CREATE TABLE teams (
  id bigserial PRIMARY KEY, name varchar NOT NULL, description text, allow_auto_assign boolean DEFAULT true,
  account_id bigint NOT NULL REFERENCES accounts ON DELETE CASCADE, created_at timestamp NOT NULL,
  updated_at timestamp NOT NULL, UNIQUE (name, account_id));
CREATE TABLE team_members (
  id bigserial PRIMARY KEY, team_id bigint NOT NULL REFERENCES teams ON DELETE CASCADE,
  user_id bigint NOT NULL REFERENCES users ON DELETE CASCADE, created_at timestamp NOT NULL,
  updated_at timestamp NOT NULL, UNIQUE (team_id, user_id));
CREATE TABLE sla_policies (
  id bigserial PRIMARY KEY, name varchar NOT NULL, first_response_time_threshold float,
  next_response_time_threshold float, only_during_business_hours boolean DEFAULT false, account_id bigint NOT NULL,
  created_at timestamp NOT NULL, updated_at timestamp NOT NULL, description varchar, resolution_time_threshold float);
CREATE TABLE conversations (
  id serial PRIMARY KEY, account_id integer NOT NULL, inbox_id integer NOT NULL, status integer NOT NULL DEFAULT 0,
  assignee_id integer, created_at timestamp NOT NULL, updated_at timestamp NOT NULL, contact_id bigint,
  display_id integer NOT NULL, contact_last_seen_at timestamp, agent_last_seen_at timestamp,
  additional_attributes jsonb DEFAULT '{}', contact_inbox_id bigint REFERENCES contact_inboxes ON DELETE CASCADE,
  uuid uuid NOT NULL DEFAULT gen_random_uuid() UNIQUE, identifier varchar, last_activity_at timestamp NOT NULL,
  team_id bigint REFERENCES teams ON DELETE SET NULL, campaign_id bigint REFERENCES campaigns ON DELETE SET NULL,
  snoozed_until timestamp, custom_attributes jsonb DEFAULT '{}', assignee_last_seen_at timestamp,
  first_reply_created_at timestamp, priority integer, sla_policy_id bigint, waiting_since timestamp,
  cached_label_list text, UNIQUE (account_id, display_id));
CREATE TABLE messages (
  id serial PRIMARY KEY, content text, account_id integer NOT NULL, inbox_id integer NOT NULL,
  conversation_id integer NOT NULL, message_type integer NOT NULL, created_at timestamp NOT NULL,
  updated_at timestamp NOT NULL, private boolean NOT NULL DEFAULT false, status integer DEFAULT 0, source_id text,
  content_type integer NOT NULL DEFAULT 0, content_attributes json DEFAULT '{}', sender_type varchar, sender_id bigint,
  external_source_ids jsonb DEFAULT '{}', additional_attributes jsonb DEFAULT '{}', processed_message_content text,
  sentiment jsonb DEFAULT '{}');
CREATE TABLE attachments (
  id serial PRIMARY KEY, file_type integer DEFAULT 0, external_url varchar, coordinates_lat float DEFAULT 0,
  coordinates_long float DEFAULT 0, message_id integer NOT NULL, account_id integer NOT NULL,
  created_at timestamp NOT NULL, updated_at timestamp NOT NULL, fallback_title varchar, extension varchar,
  meta jsonb DEFAULT '{}');
CREATE TABLE labels (
  id bigserial PRIMARY KEY, title varchar, description text, color varchar NOT NULL DEFAULT '#1f93ff',
  show_on_sidebar boolean, account_id bigint, created_at timestamp NOT NULL, updated_at timestamp NOT NULL);
CREATE TABLE tags (id serial PRIMARY KEY, name varchar UNIQUE, taggings_count integer DEFAULT 0);
CREATE TABLE taggings (
  id serial PRIMARY KEY, tag_id integer, taggable_type varchar, taggable_id integer, tagger_type varchar,
  tagger_id integer, context varchar(128), created_at timestamp);
CREATE TABLE notes (
  id bigserial PRIMARY KEY, content text NOT NULL, account_id bigint NOT NULL REFERENCES accounts ON DELETE CASCADE,
  contact_id bigint NOT NULL REFERENCES contacts ON DELETE CASCADE, user_id bigint REFERENCES users ON DELETE CASCADE,
  created_at timestamp NOT NULL, updated_at timestamp NOT NULL);
CREATE TABLE notifications (
  id bigserial PRIMARY KEY, account_id bigint NOT NULL, user_id bigint NOT NULL, notification_type integer NOT NULL,
  primary_actor_type varchar NOT NULL, primary_actor_id bigint NOT NULL, secondary_actor_type varchar,
  secondary_actor_id bigint, read_at timestamp, created_at timestamp NOT NULL, updated_at timestamp NOT NULL,
  snoozed_until timestamp, last_activity_at timestamp DEFAULT now(), meta jsonb DEFAULT '{}');
CREATE TABLE inbox_members (
  id serial PRIMARY KEY, user_id integer NOT NULL, inbox_id integer NOT NULL, created_at timestamp NOT NULL,
  updated_at timestamp NOT NULL);
CREATE TABLE mentions (
  id bigserial PRIMARY KEY, user_id bigint NOT NULL REFERENCES users ON DELETE CASCADE,
  conversation_id bigint NOT NULL REFERENCES conversations ON DELETE CASCADE, account_id bigint NOT NULL,
  mentioned_at timestamp NOT NULL, created_at timestamp NOT NULL, updated_at timestamp NOT NULL);
CREATE TABLE reporting_events (
  id bigserial PRIMARY KEY, name varchar, value float, account_id integer, inbox_id integer, user_id integer,
  conversation_id integer, created_at timestamp NOT NULL, updated_at timestamp NOT NULL, value_in_business_hours float,
  event_start_time timestamp, event_end_time timestamp);
CREATE TABLE canned_responses (
  id serial PRIMARY KEY, account_id integer NOT NULL, short_code varchar, content text, created_at timestamp NOT NULL,
  updated_at timestamp NOT NULL);
CREATE TABLE webhooks (
  id bigserial PRIMARY KEY, account_id integer, inbox_id integer, url varchar, created_at timestamp NOT NULL,
  updated_at timestamp NOT NULL, webhook_type integer DEFAULT 0, subscriptions jsonb DEFAULT '[]');
""",
    data="""
CREATE FUNCTION pick(n integer) RETURNS integer LANGUAGE sql AS 'SELECT 1 + floor(random() * n)::integer';
INSERT INTO accounts (name, created_at, updated_at) SELECT 'Account ' || g, now(), now() FROM generate_series(1, 3) g;
INSERT INTO users (uid, name, email, created_at, updated_at, pubsub_token)
  SELECT 'agent' || g || '@example.com', 'Agent ' || g, 'agent' || g || '@example.com', now(), now(), md5(g::text)
  FROM generate_series(1, 40) g;
INSERT INTO account_users (account_id, user_id, role, inviter_id, created_at, updated_at)
  SELECT 1 + (g % 3), g, (g % 2), CASE WHEN g > 3 THEN 1 + (g % 3) END, now(), now() FROM generate_series(1, 40) g;
INSERT INTO channel_web_widgets (website_url, account_id, created_at, updated_at, website_token)
  SELECT 'https://site' || g || '.example', g, now(), now(), md5(g::text) FROM generate_series(1, 3) g;
INSERT INTO channel_email (account_id, email, forward_to_email, created_at, updated_at)
  SELECT g, 'support@account' || g || '.example', md5(g::text) || '@inbound.example', now(), now()
  FROM generate_series(1, 3) g;
INSERT INTO inboxes (channel_id, account_id, name, created_at, updated_at, channel_type)
  SELECT 1 + (g - 1) / 2, 1 + (g - 1) / 2, 'Inbox ' || g, now(), now(),
         CASE WHEN g % 2 = 1 THEN 'Channel::WebWidget' ELSE 'Channel::Email' END FROM generate_series(1, 6) g;
INSERT INTO contacts (name, email, phone_number, account_id, created_at, updated_at, identifier)
  SELECT 'Contact ' || g, CASE WHEN g % 5 <> 0 THEN 'contact' || g || '@mail.example' END,
         CASE WHEN g % 3 = 0 THEN '+4930' || (1000000 + g) END, pick(3), now(), now(),
         CASE WHEN g % 7 = 0 THEN 'crm-' || g END FROM generate_series(1, 3000) g;
INSERT INTO contact_inboxes (contact_id, inbox_id, source_id, created_at, updated_at, pubsub_token)
  SELECT 1 + (g - 1) % 3000, pick(6), md5(g::text), now(), now(), md5((g * 3)::text) FROM generate_series(1, 3500) g;
INSERT INTO campaigns (display_id, title, message, sender_id, account_id, inbox_id, created_at, updated_at)
  SELECT g, 'Campaign ' || g, 'Hello!', pick(40), pick(3), pick(6), now(), now() FROM generate_series(1, 5) g;
INSERT INTO teams (name, account_id, created_at, updated_at)
  SELECT 'Team ' || g, 1 + (g % 3), now(), now() FROM generate_series(1, 4) g;
INSERT INTO team_members (team_id, user_id, created_at, updated_at)
  SELECT DISTINCT ON (t, u) t, u, now(), now() FROM (SELECT pick(4) AS t, pick(40) AS u FROM generate_series(1, 12)) x;
INSERT INTO sla_policies (name, account_id, created_at, updated_at)
  SELECT 'SLA ' || g, g, now(), now() FROM generate_series(1, 2) g;
INSERT INTO conversations (account_id, inbox_id, status, assignee_id, created_at, updated_at, contact_id, display_id,
                           contact_inbox_id, last_activity_at, team_id, campaign_id, priority, sla_policy_id)
  SELECT ci.account, ci.inbox_id, pick(4) - 1, CASE WHEN random() < 0.7 THEN pick(40) END, now(), now(),
         ci.contact_id, g, ci.id, now(), CASE WHEN random() < 0.3 THEN pick(4) END,
         CASE WHEN random() < 0.05 THEN pick(5) END, CASE WHEN random() < 0.4 THEN pick(4) - 1 END,
         CASE WHEN random() < 0.1 THEN pick(2) END
  FROM (SELECT g, 1 + (g * 7) % 3500 AS ci_id FROM generate_series(1, 5000) g) x
  JOIN (SELECT id, contact_id, inbox_id, 1 + (inbox_id - 1) / 2 AS account FROM contact_inboxes) ci ON ci.id = x.ci_id;
INSERT INTO messages (content, account_id, inbox_id, conversation_id, message_type, created_at, updated_at,
                      source_id, sender_type, sender_id)
  SELECT 'Message ' || g, c.account_id, c.inbox_id, c.id, CASE WHEN agent THEN 1 ELSE 0 END, now(), now(),
         CASE WHEN c.inbox_id % 2 = 0 THEN '<' || md5(g::text) || '@mail.example>' END,
         CASE WHEN agent THEN 'User' ELSE 'Contact' END, CASE WHEN agent THEN pick(40) ELSE c.contact_id END
  FROM (SELECT g, pick(5000) AS conv, random() < 0.45 AS agent FROM generate_series(1, 25000) g) m
  JOIN conversations c ON c.id = m.conv;
INSERT INTO attachments (file_type, external_url, message_id, account_id, created_at, updated_at, extension)
  SELECT pick(3) - 1, 'https://files.example/' || g, m, 1 + m % 3, now(), now(), 'png'
  FROM (SELECT g, pick(25000) AS m FROM generate_series(1, 1500) g) a;
INSERT INTO labels (title, account_id, created_at, updated_at)
  SELECT 'label-' || g, 1 + g % 3, now(), now() FROM generate_series(1, 10) g;
INSERT INTO tags (name, taggings_count) SELECT 'label-' || g, 0 FROM generate_series(1, 10) g;
INSERT INTO taggings (tag_id, taggable_type, taggable_id, context, created_at)
  SELECT pick(10), 'Conversation', pick(5000), 'labels', now() FROM generate_series(1, 3000) g;
INSERT INTO notes (content, account_id, contact_id, user_id, created_at, updated_at)
  SELECT 'Note ' || g, pick(3), pick(3000), pick(40), now(), now() FROM generate_series(1, 500) g;
INSERT INTO notifications (account_id, user_id, notification_type, primary_actor_type, primary_actor_id,
                           secondary_actor_type, secondary_actor_id, created_at, updated_at)
  SELECT pick(3), pick(40), pick(5), CASE WHEN g % 3 = 0 THEN 'Message' ELSE 'Conversation' END,
         CASE WHEN g % 3 = 0 THEN pick(25000) ELSE pick(5000) END, 'User', pick(40), now(), now()
  FROM generate_series(1, 4000) g;
INSERT INTO inbox_members (user_id, inbox_id, created_at, updated_at)
  SELECT pick(40), pick(6), now(), now() FROM generate_series(1, 30) g;
INSERT INTO mentions (user_id, conversation_id, account_id, mentioned_at, created_at, updated_at)
  SELECT pick(40), pick(5000), pick(3), now(), now(), now() FROM generate_series(1, 200) g;
INSERT INTO reporting_events (name, value, account_id, inbox_id, user_id, conversation_id, created_at, updated_at)
  SELECT 'first_response', random() * 3600, pick(3), pick(6), CASE WHEN random() < 0.8 THEN pick(40) END, pick(5000),
         now(), now() FROM generate_series(1, 6000) g;
INSERT INTO canned_responses (account_id, short_code, content, created_at, updated_at)
  SELECT pick(3), 'code' || g, 'Thanks!', now(), now() FROM generate_series(1, 20) g;
INSERT INTO webhooks (account_id, inbox_id, url, created_at, updated_at)
  SELECT g, CASE WHEN g = 1 THEN 1 END, 'https://hooks.example/' || g, now(), now() FROM generate_series(1, 2) g;
DROP FUNCTION pick(integer);
""",
    truth={
        "account_users.account_id": "accounts.id", "account_users.user_id": "users.id",
        "account_users.inviter_id": "users.id", "channel_web_widgets.account_id": "accounts.id",
        "channel_email.account_id": "accounts.id", "inboxes.account_id": "accounts.id",
        "contacts.account_id": "accounts.id", "contact_inboxes.contact_id": "contacts.id",
        "contact_inboxes.inbox_id": "inboxes.id", "campaigns.sender_id": "users.id",
        "campaigns.account_id": "accounts.id", "campaigns.inbox_id": "inboxes.id", "teams.account_id": "accounts.id",
        "team_members.team_id": "teams.id", "team_members.user_id": "users.id",
        "sla_policies.account_id": "accounts.id", "conversations.account_id": "accounts.id",
        "conversations.inbox_id": "inboxes.id", "conversations.assignee_id": "users.id",
        "conversations.contact_id": "contacts.id", "conversations.contact_inbox_id": "contact_inboxes.id",
        "conversations.team_id": "teams.id", "conversations.campaign_id": "campaigns.id",
        "conversations.sla_policy_id": "sla_policies.id", "messages.account_id": "accounts.id",
        "messages.inbox_id": "inboxes.id", "messages.conversation_id": "conversations.id",
        "attachments.message_id": "messages.id", "attachments.account_id": "accounts.id",
        "labels.account_id": "accounts.id", "taggings.tag_id": "tags.id", "notes.account_id": "accounts.id",
        "notes.contact_id": "contacts.id", "notes.user_id": "users.id", "notifications.account_id": "accounts.id",
        "notifications.user_id": "users.id", "inbox_members.user_id": "users.id", "inbox_members.inbox_id": "inboxes.id",
        "mentions.user_id": "users.id", "mentions.conversation_id": "conversations.id",
        "mentions.account_id": "accounts.id", "reporting_events.account_id": "accounts.id",
        "reporting_events.inbox_id": "inboxes.id", "reporting_events.user_id": "users.id",
        "reporting_events.conversation_id": "conversations.id", "canned_responses.account_id": "accounts.id",
        "webhooks.account_id": "accounts.id", "webhooks.inbox_id": "inboxes.id",
    },
    declared=frozenset({"contact_inboxes.contact_id", "contact_inboxes.inbox_id", "campaigns.account_id",
                        "campaigns.inbox_id", "teams.account_id", "team_members.team_id", "team_members.user_id",
                        "conversations.contact_inbox_id", "conversations.team_id", "conversations.campaign_id",
                        "notes.account_id", "notes.contact_id", "notes.user_id", "mentions.user_id",
                        "mentions.conversation_id"}),
)

SCHEMAS = (OSTICKET, CHATWOOT)
