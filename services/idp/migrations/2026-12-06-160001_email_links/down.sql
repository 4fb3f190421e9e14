DROP TABLE email_rate;
DROP TABLE email_links;
