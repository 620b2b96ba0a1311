"""The placement filter from a real ansible-playbook run."""

PLAYBOOK = """
- name: Place VMs with hospital.cloud.placement
  hosts: localhost
  gather_facts: false
  vars:
    kvm_hosts:
      - {name: r1-h1, vcpus: 32, memory: "128 GiB", disk: 2000, rack: r1, labels: [ssd]}
      - {name: r1-h2, vcpus: 32, memory: "128 GiB", disk: 2000, rack: r1}
      - {name: r2-h1, vcpus: 32, memory: "128 GiB", disk: 2000, rack: r2}
      - {name: r3-h1, vcpus: 32, memory: "128 GiB", disk: 2000, rack: r3, labels: [ssd]}
    vms:
      - {name: pacs-db-1, vcpus: 8, memory: "64 GiB", disk: 500,
         anti_affinity: {group: pacs-db, scope: rack}, requires: [ssd]}
      - {name: pacs-db-2, vcpus: 8, memory: "64 GiB", disk: 500,
         anti_affinity: {group: pacs-db, scope: rack}}
      - {name: pacs-web, vcpus: 2, memory: 4096, disk: 20}
    running:
      - {name: pacs-web, host: r1-h2}
  tasks:
    - name: Compute the plan
      ansible.builtin.set_fact:
        plan: "{{ vms | hospital.cloud.placement(kvm_hosts, current=running, reserve='n+1') }}"
    - name: Show it
      ansible.builtin.debug:
        var: plan
    - name: An impossible request fails with the binding reason
      ansible.builtin.set_fact:
        bad: "{{ [{'name': 'huge', 'vcpus': 1, 'memory': '1 TiB', 'disk': 1}] | hospital.cloud.placement(kvm_hosts) }}"
      ignore_errors: true
      register: bad_result
    - name: An overflowing overcommit fails with a message naming it (issue 14 item 13)
      ansible.builtin.set_fact:
        overflow: "{{ vms | hospital.cloud.placement([kvm_hosts[0] | combine({'overcommit': {'cpu': 1e308}})]) }}"
      ignore_errors: true
      register: overflow_result
"""


def test_filter_in_playbook(run_playbook):
    res = run_playbook(PLAYBOOK)
    assert res.rc == 0, res.stdout + res.stderr
    tasks = {t["task"]: t["result"] for t in res.tasks}
    plan = tasks["Show it"]["plan"]
    overflow = tasks["An overflowing overcommit fails with a message naming it (issue 14 item 13)"]
    assert overflow["failed"] and "overcommit.cpu must be at most 1000" in overflow["msg"], overflow
    assert "OverflowError" not in res.stdout + res.stderr and "Traceback" not in overflow["msg"]
    db1, db2 = plan["assignment"]["pacs-db-1"], plan["assignment"]["pacs-db-2"]
    assert db1 in ("r1-h1", "r3-h1")                                   # needs ssd
    assert plan["hosts"][db1]["rack"] != plan["hosts"][db2]["rack"]    # rack anti-affinity
    assert plan["assignment"]["pacs-web"] == "r1-h2" and plan["moves"] == []
    assert set(plan["failover"]) == {h for h, u in plan["hosts"].items() if u["vms"]}
    for failed, moves in plan["failover"].items():
        if "pacs-db-1" in moves:
            assert moves["pacs-db-1"] in ("r1-h1", "r3-h1") and moves["pacs-db-1"] != failed
    bad = tasks["An impossible request fails with the binding reason"]
    assert bad["failed"] and "vm huge: no host can take it" in bad["msg"]
    assert "has only 128 GiB RAM in total" in bad["msg"]


def test_capacity_report_playbook(run_playbook, tmp_path):
    from pathlib import Path
    playbook = Path(__file__).resolve().parents[3] / "playbooks" / "capacity_report.yml"
    extra = {
        "capacity_report_dir": str(tmp_path),
        "capacity_report_hosts": [{"name": "h%d" % i, "vcpus": 16, "memory": "64 GiB", "disk": 500}
                                  for i in range(3)],
        "capacity_report_vms": [{"name": "vm%d" % i, "vcpus": 4, "memory": "8 GiB", "disk": 40}
                                for i in range(7)],
        "capacity_report_current": {"vm0": "h2"},
    }
    res = run_playbook(str(playbook), extra_vars=extra)
    assert res.rc == 0, res.stdout + res.stderr
    md = (tmp_path / "capacity.md").read_text()
    assert "| Host | Rack | VMs | vCPU | RAM | Disk |" in md and "| h2 |" in md
    png = (tmp_path / "capacity.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
