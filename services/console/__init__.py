"""The web console: users manage their keys and see their usage; admins see the fleet.

A back end for the browser: server-rendered pages that call only the edge's public API with
the signed-in user's own token, so the console can do nothing its user could not do with curl.
"""
