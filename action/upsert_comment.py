#!/usr/bin/env python3
"""Post a plan as ONE pull-request comment (GitHub) or merge-request note (GitLab),
updated in place on every run.

The comment is found again by a hidden marker on its first line,
`<!-- flagfleet-plan:KEY -->`, so each KEY (say, one per shard of a matrix) has exactly
one comment: the first run creates it, later runs update it, none adds a second one.

Standard library only: it runs on any runner with Python 3.8 or later.

GitHub:  GITHUB_API_URL, GITHUB_REPOSITORY, GITHUB_TOKEN, and the pull request's number
         from --number or the event file (GITHUB_EVENT_PATH).
GitLab:  CI_API_V4_URL, CI_PROJECT_ID, CI_MERGE_REQUEST_IID, and GITLAB_TOKEN (a project
         or personal access token with the `api` scope; CI_JOB_TOKEN cannot write notes).

Exit codes: 0 posted, updated or (with --update-only) nothing to do; 1 error. The token
is sent only in a request header and never printed.
"""

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

# GitHub's limit for one comment, in characters.
GITHUB_LIMIT = 65536
CUT_NOTE = "\n\n_The plan was cut to fit in one comment: the full plan is in the saved plan._\n"


class Forge:
    """Where comments live and how to list, create and update them."""

    def __init__(self, kind, api, thread, headers, limit):
        self.kind = kind
        self.api = api.rstrip("/")
        self.thread = thread  # path of the comment list, relative to the API
        self.headers = headers
        self.limit = limit

    def request(self, method, url, body=None):
        data = None if body is None else json.dumps({"body": body}).encode()
        req = urllib.request.Request(url, data=data, method=method, headers=dict(self.headers))
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return json.load(resp), resp.headers
        except urllib.error.HTTPError as e:
            detail = e.read().decode(errors="replace")[:500]
            path = urllib.parse.urlsplit(url).path
            raise SystemExit(f"error: {method} {path}: HTTP {e.code}: {detail}")
        except urllib.error.URLError as e:
            raise SystemExit(f"error: {method} {self.api}: {e.reason}")

    def comments(self):
        """Every comment of the thread, following the pages (`Link: <...>; rel="next"`)."""
        url = f"{self.api}/{self.thread}?per_page=100"
        if self.kind == "gitlab":
            url += "&sort=asc&order_by=created_at"
        while url:
            page, headers = self.request("GET", url)
            yield from page
            url = next_link(headers.get("Link", ""))

    def create(self, body):
        return self.request("POST", f"{self.api}/{self.thread}", body)[0]

    def update(self, comment_id, body):
        if self.kind == "github":
            # Issue comment ids are repository-wide: /repos/{repo}/issues/comments/{id}.
            repo_issues = self.thread.rsplit("/", 2)[0]
            url = f"{self.api}/{repo_issues}/comments/{comment_id}"
            return self.request("PATCH", url, body)[0]
        return self.request("PUT", f"{self.api}/{self.thread}/{comment_id}", body)[0]


def next_link(header):
    for part in header.split(","):
        section = part.split(";")
        if len(section) > 1 and any(s.strip() == 'rel="next"' for s in section[1:]):
            return section[0].strip().strip("<>")
    return None


def github(number):
    repo = need("GITHUB_REPOSITORY")
    if number is None:
        event_path = os.environ.get("GITHUB_EVENT_PATH")
        if event_path:
            with open(event_path, encoding="utf-8") as f:
                event = json.load(f)
            number = (event.get("pull_request") or event.get("issue") or {}).get("number")
    if number is None:
        raise SystemExit("error: no pull request: pass --number N or run on a pull_request event")
    headers = {
        "Authorization": f"Bearer {need('GITHUB_TOKEN')}",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
        "User-Agent": "flagfleet-action",
    }
    api = os.environ.get("GITHUB_API_URL", "https://api.github.com")
    return Forge("github", api, f"repos/{repo}/issues/{number}/comments", headers, GITHUB_LIMIT)


def gitlab(number):
    project = urllib.parse.quote(need("CI_PROJECT_ID"), safe="")
    iid = number if number is not None else need("CI_MERGE_REQUEST_IID")
    headers = {"PRIVATE-TOKEN": need("GITLAB_TOKEN"), "User-Agent": "flagfleet-ci"}
    thread = f"projects/{project}/merge_requests/{iid}/notes"
    return Forge("gitlab", need("CI_API_V4_URL"), thread, headers, 1_000_000)


def need(var):
    value = os.environ.get(var)
    if not value:
        raise SystemExit(f"error: the environment variable {var} is not set")
    return value


def fit(marker, text, limit):
    """The comment body: the marker line, then the text, cut to the forge's limit."""
    body = f"{marker}\n{text}"
    if len(body) <= limit:
        return body
    return body[: limit - len(CUT_NOTE)] + CUT_NOTE


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--body-file", required=True, help="the Markdown to post")
    parser.add_argument("--key", default="default", help="which comment (one per key)")
    parser.add_argument("--forge", choices=["github", "gitlab"], default="github")
    parser.add_argument("--number", help="pull/merge request number (default: from the CI)")
    parser.add_argument(
        "--update-only",
        action="store_true",
        help="update the comment if there is one, but create none (e.g. when nothing changes)",
    )
    args = parser.parse_args()

    forge = github(args.number) if args.forge == "github" else gitlab(args.number)
    with open(args.body_file, encoding="utf-8") as f:
        text = f.read()
    marker = f"<!-- flagfleet-plan:{args.key} -->"
    body = fit(marker, text, forge.limit)

    mine = [c for c in forge.comments() if (c.get("body") or "").startswith(marker + "\n")]
    if mine:
        comment = forge.update(mine[0]["id"], body)
        action = "updated"
    elif args.update_only:
        print("No earlier plan comment and nothing changes: no comment posted.")
        return
    else:
        comment = forge.create(body)
        action = "created"
    print(f"{action} comment {comment['id']}")
    output = os.environ.get("GITHUB_OUTPUT")
    if output:
        with open(output, "a", encoding="utf-8") as f:
            f.write(f"comment-id={comment['id']}\n")


if __name__ == "__main__":
    main()
