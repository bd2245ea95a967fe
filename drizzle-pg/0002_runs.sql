CREATE TABLE "runs" (
	"id" text PRIMARY KEY NOT NULL,
	"dispatch_key" text NOT NULL,
	"dispatch_id" text NOT NULL,
	"task_id" text NOT NULL,
	"group" text NOT NULL,
	"status" text NOT NULL,
	"pid" integer,
	"exit_code" integer,
	"signal" text,
	"output_tail" text,
	"context_file" text,
	"created_at" bigint NOT NULL,
	"started_at" bigint,
	"finished_at" bigint,
	CONSTRAINT "runs_dispatch_key_unique" UNIQUE("dispatch_key")
);
--> statement-breakpoint
CREATE INDEX "runs_status_idx" ON "runs" USING btree ("status","id");--> statement-breakpoint
CREATE INDEX "runs_task_idx" ON "runs" USING btree ("task_id","id");